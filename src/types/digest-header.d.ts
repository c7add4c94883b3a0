/** Types for digest-header (CommonJS, no bundled types): builds an RFC 2617/7616 `Authorization: Digest` value. */
declare module 'digest-header' {
  /**
   * @param method HTTP method, e.g. `GET`
   * @param uri request target (path and query)
   * @param wwwAuthenticate the challenge, with or without the leading `Digest `
   * @param userpass `user:password`
   * @returns the header value (`Digest username=…`), or `''` when the challenge has no realm or nonce
   */
  export default function digestAuthHeader(method: string, uri: string, wwwAuthenticate: string, userpass: string): string;
}
