/** The two libsodium calls the relay uses (sodium-native ships no types). */
declare module 'sodium-native' {
  /** Writes the ciphertext to `ciphertext` (may be `message` itself: in place) and the tag to `mac`; returns the tag length. */
  export function crypto_aead_chacha20poly1305_ietf_encrypt_detached(
    ciphertext: Uint8Array,
    mac: Uint8Array,
    message: Uint8Array,
    additionalData: Uint8Array | null,
    nsec: null,
    npub: Uint8Array,
    key: Uint8Array,
  ): number;
  /** Writes the plaintext to `message` (may be `ciphertext` itself); throws when the tag does not verify. */
  export function crypto_aead_chacha20poly1305_ietf_decrypt_detached(
    message: Uint8Array,
    nsec: null,
    ciphertext: Uint8Array,
    mac: Uint8Array,
    additionalData: Uint8Array | null,
    npub: Uint8Array,
    key: Uint8Array,
  ): void;
}
