/** `mysql://user:secret@db` -> `mysql://***@db`, anywhere in a text. */
export function withoutCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, "$1***@");
}
