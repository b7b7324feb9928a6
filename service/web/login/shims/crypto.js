// Node's `crypto`, which eccrypto imports but calls only where the browser has no Web
// Crypto: a page on http://127.0.0.1 (a secure context) always has it.
export default {};
