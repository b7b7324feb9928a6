// Node's global Buffer, which torus.js and eccrypto use, from the `buffer` package
// (esbuild --inject puts it wherever the code names `Buffer`).
export { Buffer } from "buffer";
