//! Node identity, the spec's signatures (`SignData`), and eccrypto-compatible ECIES.
//!
//! * Signatures: ECDSA over secp256k1 of keccak256(message), RFC 6979 nonces,
//!   low-s, raw 65-byte r‖s‖v with v ∈ {0,1}; as text, `hex(r)‖hex(s)‖hex(v+27)`
//!   (130 characters). Verification checks r, s against a known key and accepts
//!   high-s (the spec's signer and clients may produce it).
//! * ECIES: shared x = 32-byte zero-padded x of e·P; K = SHA-512(x); AES-256-CBC
//!   with PKCS#7 under K[0..32], random 16-byte IV; HMAC-SHA256 under K[32..64]
//!   over iv ‖ ephemeral public key (65-byte uncompressed) ‖ ciphertext.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::{AffinePoint, ProjectivePoint, PublicKey, SecretKey};
use rand_core::{CryptoRngCore, OsRng};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::hexfmt::{checksum_address, eth_address, hex_min, keccak256};

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Errors of the crypto helpers.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// Not a valid secp256k1 public key.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// Not a valid secret key (zero or >= q).
    #[error("invalid secret key")]
    InvalidSecretKey,
    /// Signature bytes of the wrong shape.
    #[error("invalid signature encoding")]
    InvalidSignature,
    /// Signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// ECIES MAC mismatch or bad padding.
    #[error("decryption failed")]
    Decrypt,
}

/// A node's secp256k1 identity key. Zeroized on drop; `Debug` prints only the address.
pub struct NodeKey {
    sk: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey")
            .field("address", &self.public().address())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl NodeKey {
    /// A fresh random key.
    pub fn random() -> Self {
        NodeKey {
            sk: SigningKey::random(&mut OsRng),
        }
    }
    /// From 32 big-endian bytes.
    pub fn from_bytes(b: &[u8; 32]) -> Result<Self, CryptoError> {
        let sk = SigningKey::from_bytes(b.into()).map_err(|_| CryptoError::InvalidSecretKey)?;
        Ok(NodeKey { sk })
    }
    /// The 32 secret bytes (zeroized when dropped).
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.sk.to_bytes());
        out
    }
    /// The public key.
    pub fn public(&self) -> NodePub {
        NodePub(*self.sk.verifying_key())
    }
    /// `SignData`: ECDSA over keccak256(msg), raw 65 bytes r‖s‖v, v ∈ {0,1}.
    pub fn sign(&self, msg: &[u8]) -> [u8; 65] {
        self.sign_prehash(&keccak256(msg))
    }
    /// Signs a 32-byte digest.
    pub fn sign_prehash(&self, digest: &[u8; 32]) -> [u8; 65] {
        let mut out = [0u8; 65];
        // RFC 6979 signing of a 32-byte prehash cannot fail for a valid key.
        if let Ok((sig, rid)) = self.sk.sign_prehash_recoverable(digest) {
            out[..64].copy_from_slice(&sig.to_bytes());
            out[64] = rid.to_byte();
        }
        out
    }
    /// A key derived for another purpose (HKDF-like: keccak(domain ‖ secret)).
    pub fn derive(&self, domain: &str) -> Zeroizing<[u8; 32]> {
        let mut buf = Zeroizing::new(Vec::with_capacity(domain.len() + 32));
        buf.extend_from_slice(domain.as_bytes());
        buf.extend_from_slice(&self.sk.to_bytes());
        Zeroizing::new(keccak256(&buf))
    }
    /// ECDH with `peer`: the 32-byte x of sk·peer.
    pub fn ecdh_x(&self, peer: &NodePub) -> Zeroizing<[u8; 32]> {
        let sk: SecretKey = self.sk.as_nonzero_scalar().into();
        let p = (ProjectivePoint::from(*peer.0.as_affine()) * *sk.to_nonzero_scalar()).to_affine();
        let enc = p.to_encoded_point(false);
        let mut x = Zeroizing::new([0u8; 32]);
        if let Some(xb) = enc.x() {
            x.copy_from_slice(xb);
        }
        x
    }
}

/// A node's (or any party's) secp256k1 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NodePub(pub VerifyingKey);

impl std::fmt::Debug for NodePub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodePub({})", self.address())
    }
}

impl NodePub {
    /// From SEC1 bytes (33 or 65).
    pub fn from_sec1(b: &[u8]) -> Result<Self, CryptoError> {
        VerifyingKey::from_sec1_bytes(b)
            .map(NodePub)
            .map_err(|_| CryptoError::InvalidPublicKey)
    }
    /// From 32-byte big-endian x and y.
    pub fn from_xy(x: &[u8; 32], y: &[u8; 32]) -> Result<Self, CryptoError> {
        let mut b = [0u8; 65];
        b[0] = 4;
        b[1..33].copy_from_slice(x);
        b[33..].copy_from_slice(y);
        Self::from_sec1(&b)
    }
    /// 33-byte compressed SEC1.
    pub fn compressed(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out.copy_from_slice(self.0.to_encoded_point(true).as_bytes());
        out
    }
    /// x and y, 32 bytes each.
    pub fn xy(&self) -> ([u8; 32], [u8; 32]) {
        let e = self.0.to_encoded_point(false);
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        if let (Some(xb), Some(yb)) = (e.x(), e.y()) {
            x.copy_from_slice(xb);
            y.copy_from_slice(yb);
        }
        (x, y)
    }
    /// x and y as `Text(16)` hex (no leading zeros).
    pub fn hex_xy(&self) -> (String, String) {
        let (x, y) = self.xy();
        (hex_min(&x), hex_min(&y))
    }
    /// The 20-byte Ethereum address.
    pub fn address_bytes(&self) -> [u8; 20] {
        let (x, y) = self.xy();
        let mut xy = [0u8; 64];
        xy[..32].copy_from_slice(&x);
        xy[32..].copy_from_slice(&y);
        eth_address(&xy)
    }
    /// EIP-55 address.
    pub fn address(&self) -> String {
        checksum_address(&self.address_bytes())
    }
    /// Verifies a 64- or 65-byte r‖s(‖v) signature over keccak256(msg); high-s accepted, v ignored.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        self.verify_prehash(&keccak256(msg), sig)
    }
    /// As [`Self::verify`] over a digest.
    pub fn verify_prehash(&self, digest: &[u8; 32], sig: &[u8]) -> Result<(), CryptoError> {
        let rs = match sig.len() {
            64 | 65 => &sig[..64],
            _ => return Err(CryptoError::InvalidSignature),
        };
        let s = Signature::from_slice(rs).map_err(|_| CryptoError::InvalidSignature)?;
        let s = s.normalize_s().unwrap_or(s);
        use k256::ecdsa::signature::hazmat::PrehashVerifier;
        self.0
            .verify_prehash(digest, &s)
            .map_err(|_| CryptoError::BadSignature)
    }
    /// Recovers the signer of a 65-byte signature over keccak256(msg) (v ∈ {0,1,27,28}).
    pub fn recover(msg: &[u8], sig: &[u8]) -> Result<Self, CryptoError> {
        let (rs, v) = match sig {
            [rs @ .., v] if rs.len() == 64 => (rs, *v),
            _ => return Err(CryptoError::InvalidSignature),
        };
        let v = if v >= 27 { v - 27 } else { v };
        let rid = RecoveryId::from_byte(v).ok_or(CryptoError::InvalidSignature)?;
        let s = Signature::from_slice(rs).map_err(|_| CryptoError::InvalidSignature)?;
        VerifyingKey::recover_from_prehash(&keccak256(msg), &s, rid)
            .map(NodePub)
            .map_err(|_| CryptoError::BadSignature)
    }
}

/// `SigToHex`: hex(r)‖hex(s)‖hex(v+27), 130 characters.
pub fn sig_to_hex(sig: &[u8; 65]) -> String {
    let mut b = *sig;
    b[64] = b[64].wrapping_add(27);
    hex::encode(b)
}

/// Parses a 130-hex signature (v byte kept as is).
pub fn sig_from_hex(s: &str) -> Option<[u8; 65]> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.len() != 130 {
        return None;
    }
    let v = hex::decode(s).ok()?;
    let mut out = [0u8; 65];
    out.copy_from_slice(&v);
    Some(out)
}

/// An eccrypto-compatible ECIES ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ecies {
    /// 16-byte IV.
    pub iv: [u8; 16],
    /// 65-byte uncompressed ephemeral public key.
    pub ephem_public_key: [u8; 65],
    /// AES-256-CBC ciphertext.
    pub ciphertext: Vec<u8>,
    /// HMAC-SHA256 tag.
    pub mac: [u8; 32],
}

fn kdf(x: &[u8; 32]) -> Zeroizing<[u8; 64]> {
    let mut k = Zeroizing::new([0u8; 64]);
    k.copy_from_slice(&Sha512::digest(x));
    k
}

fn mac_of(mac_key: &[u8], iv: &[u8; 16], ephem: &[u8; 65], ct: &[u8]) -> [u8; 32] {
    let Ok(mut m) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(mac_key) else {
        return [0u8; 32];
    };
    m.update(iv);
    m.update(ephem);
    m.update(ct);
    m.finalize().into_bytes().into()
}

fn shared_x(sk: &k256::NonZeroScalar, pk: &AffinePoint) -> Zeroizing<[u8; 32]> {
    let p = (ProjectivePoint::from(*pk) * **sk).to_affine();
    let e = p.to_encoded_point(false);
    let mut x = Zeroizing::new([0u8; 32]);
    if let Some(xb) = e.x() {
        x.copy_from_slice(xb);
    }
    x
}

/// Encrypts `plaintext` to `to` (eccrypto `encrypt` with padded x).
pub fn ecies_encrypt(to: &PublicKey, plaintext: &[u8], rng: &mut impl CryptoRngCore) -> Ecies {
    let e = SecretKey::random(rng);
    let mut iv = [0u8; 16];
    rng.fill_bytes(&mut iv);
    ecies_encrypt_with(to, plaintext, &e, iv)
}

/// [`ecies_encrypt`] with a given ephemeral key and IV (known-answer tests).
pub fn ecies_encrypt_with(to: &PublicKey, plaintext: &[u8], e: &SecretKey, iv: [u8; 16]) -> Ecies {
    let mut ephem = [0u8; 65];
    ephem.copy_from_slice(e.public_key().to_encoded_point(false).as_bytes());
    let x = shared_x(&e.to_nonzero_scalar(), to.as_affine());
    let k = kdf(&x);
    let ciphertext =
        Aes256CbcEnc::new(k[..32].into(), (&iv).into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mac = mac_of(&k[32..], &iv, &ephem, &ciphertext);
    Ecies {
        iv,
        ephem_public_key: ephem,
        ciphertext,
        mac,
    }
}

/// Decrypts an [`Ecies`] ciphertext with `sk` (used by the Rust client and tests).
pub fn ecies_decrypt(sk: &SecretKey, c: &Ecies) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let ephem =
        PublicKey::from_sec1_bytes(&c.ephem_public_key).map_err(|_| CryptoError::Decrypt)?;
    let x = shared_x(&sk.to_nonzero_scalar(), ephem.as_affine());
    let k = kdf(&x);
    let want = mac_of(&k[32..], &c.iv, &c.ephem_public_key, &c.ciphertext);
    if !bool::from(want.ct_eq(&c.mac)) {
        return Err(CryptoError::Decrypt);
    }
    let mut buf = c.ciphertext.clone();
    let out = Aes256CbcDec::new(k[..32].into(), (&c.iv).into())
        .decrypt_padded_mut::<Pkcs7>(&mut buf)
        .map(|p| p.to_vec())
        .map_err(|_| CryptoError::Decrypt);
    buf.zeroize();
    out.map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_recover_and_hex() {
        let k = NodeKey::random();
        let sig = k.sign(b"hello");
        k.public().verify(b"hello", &sig).unwrap();
        assert_eq!(
            k.public().verify(b"hellp", &sig),
            Err(CryptoError::BadSignature)
        );
        let h = sig_to_hex(&sig);
        assert_eq!(h.len(), 130);
        assert!(h.ends_with("1b") || h.ends_with("1c"));
        let back = sig_from_hex(&h).unwrap();
        assert_eq!(NodePub::recover(b"hello", &back).unwrap(), k.public());
        // High-s form of the same signature also verifies (v ignored).
        let s = Signature::from_slice(&sig[..64]).unwrap();
        let (r, sv) = s.split_scalars();
        let high = Signature::from_scalars(r.to_bytes(), (-*sv).to_bytes()).unwrap();
        k.public().verify(b"hello", &high.to_bytes()).unwrap();
        assert!(!format!("{k:?}").contains(&hex::encode(*k.to_bytes())));
    }

    /// Vectors from the real `@toruslabs/eccrypto` 4.x. The first is its `encrypt`
    /// with fixed `iv` and `ephemPrivateKey`. In the second the shared x has a leading
    /// zero byte: eccrypto's `encrypt` derives x unpadded there (the 1-in-256 pitfall of
    /// spec §4), so the vector is the padded-x form computed with its `derivePadded`, and
    /// its `decrypt` (unpadded, then padded) was checked to open it and return the
    /// plaintext.
    #[test]
    fn ecies_matches_toruslabs_eccrypto() {
        let mut priv_b = [0u8; 32];
        priv_b[31] = 7;
        priv_b[0] = 0x11;
        let sk = SecretKey::from_bytes((&priv_b).into()).unwrap();
        let cases = [
            (
                "2200000000000000000000000000000000000000000000000000000000000009",
                "000102030405060708090a0b0c0d0e0f",
                "00ff10203040506070",
                "042188a7ca4952d38376674bc59a956da9d63a969f52ebc239d117accc5da4aea1184efbaf343fa2b8236600b0e3d47b1f02d9a40672431a47e2caa481681fe91e",
                "bc91c58097e275d8186fed81a6b23f21",
                "04e3dbffd42f7d4ee71760ae14a44f8f788877b3e9e24bc9116e4b8c803b5738",
            ),
            (
                "33000000000000000000000000000000000000000000000000000000000000c5",
                "f0e0d0c0b0a090807060504030201000",
                "0a0b0c",
                "04821fce7896337ece02b65fba3773c8ec6608c638ab806811e75e9d2b36372f4336ebc1a41706c533a13ad88f6a027b77955f15a4424c4bd8b2fd5aea7f9cdacd",
                "d40d05817443b2ddf05846b45b20a37b",
                "80bfcabea7859676eb4942e60652bbbe105ae914ee7db8fb06bd0a33d165d2ec",
            ),
        ];
        for (eph, iv, msg, ephem_pub, ct, mac) in cases {
            let e = SecretKey::from_slice(&hex::decode(eph).unwrap()).unwrap();
            let iv: [u8; 16] = hex::decode(iv).unwrap().try_into().unwrap();
            let msg = hex::decode(msg).unwrap();
            let c = ecies_encrypt_with(&sk.public_key(), &msg, &e, iv);
            assert_eq!(hex::encode(c.ephem_public_key), ephem_pub);
            assert_eq!(hex::encode(&c.ciphertext), ct);
            assert_eq!(hex::encode(c.mac), mac);
            assert_eq!(&*ecies_decrypt(&sk, &c).unwrap(), &msg);
        }
    }

    #[test]
    fn ecies_round_trip_and_tamper() {
        let sk = SecretKey::random(&mut OsRng);
        for len in [0usize, 1, 15, 16, 31, 32, 33] {
            let msg: Vec<u8> = (0..len as u8).collect();
            let c = ecies_encrypt(&sk.public_key(), &msg, &mut OsRng);
            assert_eq!(c.ciphertext.len(), (len / 16 + 1) * 16);
            assert_eq!(&*ecies_decrypt(&sk, &c).unwrap(), &msg);
            let mut bad = c.clone();
            bad.ciphertext[0] ^= 1;
            assert_eq!(ecies_decrypt(&sk, &bad), Err(CryptoError::Decrypt));
        }
    }
}
