/** The release this build reports in `loom status` and `/report`; kept equal to package.json (a test checks). */
export const LOOM_VERSION = '0.1.0';
