/** Kept in step with package.json by the release process; the API reports it in its document. */
export const version = "0.1.0";
