//! The devnet's login page (issue #13): a person picks an e-mail, the devnet's
//! development issuer mints an id token for it, and the real torus.js 8.0.1, bundled for
//! the browser (`service/web/login/`), runs the whole flow against the devnet's nodes and
//! hosts, showing the address, the key index, each node's answer and the time per step.
//!
//! * `GET /login`: the page; `GET /login/page.js`: its script; `GET /login/torus.js`: the
//!   bundle (built by `npm run build` in `service/web/login/`, checked in, embedded here:
//!   the node needs no Node.js at run time);
//! * `GET /login/devnet.json`: the devnet's `devnet.json` (HTTP 503 until the key
//!   buffer is full and the file is written);
//! * `POST /login/token` `{"email": "..."}`: `{"id_token": "..."}` for that e-mail,
//!   signed with `dev-issuer.key`. Anyone who reaches the port gets a token for any
//!   e-mail: this is for the devnet only, on loopback, never for a real network.
//!
//!   The endpoint answers only its own page: a request from a browser page of another
//!   origin (another site the developer has open) gets HTTP 403 ([`origin_allowed`]).
//!
//! The rules for the token request are here, without I/O ([`token_request`]).

use serde::Deserialize;

/// The page.
pub const PAGE_HTML: &str = include_str!("../../../web/login/index.html");
/// The page's script.
pub const PAGE_JS: &str = include_str!("../../../web/login/page.js");
/// torus.js 8.0.1 for the browser (`service/web/login/dist/torus.js`).
pub const TORUS_JS: &str = include_str!("../../../web/login/dist/torus.js");

/// Longest e-mail address accepted (RFC 5321's limit on a forward path, less `<>`).
pub const MAX_EMAIL: usize = 254;
/// Longest local part (before the `@`).
pub const MAX_LOCAL: usize = 64;
/// Longest domain label.
pub const MAX_LABEL: usize = 63;

/// Mints a development id token for an e-mail (the devnet's issuer key); an error
/// says why not.
pub type TokenMinter = std::sync::Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// Whether a token request with this `Origin` header may be answered by the hosts on
/// `port`: none (not from a browser page) or the login page's own origin
/// (`http://127.0.0.1:PORT` or `http://localhost:PORT`).
pub fn origin_allowed(origin: Option<&str>, port: u16) -> bool {
    match origin {
        None => true,
        Some(o) => {
            o == format!("http://127.0.0.1:{port}") || o == format!("http://localhost:{port}")
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    email: String,
}

/// The e-mail of a `POST /login/token` body, or why the request is refused (HTTP 400).
pub fn token_request(body: &[u8]) -> Result<String, String> {
    let req: TokenRequest = serde_json::from_slice(body)
        .map_err(|e| format!("expected {{\"email\": \"...\"}}: {e}"))?;
    check_email(&req.email)?;
    Ok(req.email)
}

fn local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
}

/// A plain ASCII address: `local@domain`, the local part of letters, digits and
/// ``!#$%&'*+-/=?^_`{|}~.`` (no leading, trailing or double dot), the domain of at least
/// two dot-separated labels of letters, digits and inner hyphens; at most [`MAX_EMAIL`]
/// bytes. No quoted local parts, comments or IP literals.
pub fn check_email(email: &str) -> Result<(), String> {
    if email.is_empty() {
        return Err("the e-mail is empty".into());
    }
    if email.len() > MAX_EMAIL {
        return Err(format!("the e-mail is longer than {MAX_EMAIL} bytes"));
    }
    if !email.is_ascii() {
        return Err("the e-mail must be plain ASCII".into());
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("the e-mail has no @".into());
    };
    if domain.contains('@') {
        return Err("the e-mail has more than one @".into());
    }
    if local.is_empty() || local.len() > MAX_LOCAL {
        return Err(format!(
            "the part before the @ must have 1 to {MAX_LOCAL} characters"
        ));
    }
    if let Some(c) = local.chars().find(|&c| !local_char(c)) {
        return Err(format!(
            "the part before the @ may not contain {c:?} (letters, digits and !#$%&'*+-/=?^_`{{|}}~. only)"
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(
            "the part before the @ may not start or end with a dot or have two in a row".into(),
        );
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("the domain needs at least two labels (example.com)".into());
    }
    for l in labels {
        if l.is_empty() || l.len() > MAX_LABEL {
            return Err(format!(
                "each domain label must have 1 to {MAX_LABEL} characters"
            ));
        }
        if !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            || l.starts_with('-')
            || l.ends_with('-')
        {
            return Err(format!(
                "the domain label {l:?} may hold only letters, digits and inner hyphens"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses_pass_the_token_rules() {
        for ok in [
            "alice@example.com",
            "a.b+tag@sub.example.co",
            "x_1-2@a-b.io",
            "o'neil@example.org",
        ] {
            assert_eq!(check_email(ok), Ok(()), "{ok}");
        }
        let max_local = format!("{}@example.com", "a".repeat(MAX_LOCAL));
        assert_eq!(check_email(&max_local), Ok(()));
        assert_eq!(
            token_request(br#"{"email":"bob@example.com"}"#),
            Ok("bob@example.com".into())
        );
    }

    #[test]
    fn malformed_or_oversized_addresses_are_refused_with_a_reason() {
        let long_local = format!("{}@example.com", "a".repeat(MAX_LOCAL + 1));
        let long_label = format!("a@{}.com", "b".repeat(MAX_LABEL + 1));
        let too_long = format!("a@{}.com", vec!["b".repeat(60); 5].join("."));
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("alice", "no @"),
            ("a@b@example.com", "more than one @"),
            ("@example.com", "1 to"),
            (&long_local, "1 to 64"),
            ("al ice@example.com", "may not contain ' '"),
            ("\"a\"@example.com", "may not contain"),
            (".a@example.com", "dot"),
            ("a..b@example.com", "dot"),
            ("a.@example.com", "dot"),
            ("alice@localhost", "two labels"),
            ("alice@example..com", "1 to 63"),
            (&long_label, "1 to 63"),
            ("alice@-example.com", "inner hyphens"),
            ("alice@exa_mple.com", "inner hyphens"),
            ("alice@[127.0.0.1]", "inner hyphens"),
            ("älice@example.com", "ASCII"),
            ("alice@example.com\n", "inner hyphens"),
            (&too_long, "longer than 254"),
        ];
        for (email, why) in cases {
            let e = check_email(email).expect_err(email);
            assert!(e.contains(why), "{email:?}: {e:?} should say {why:?}");
        }
    }

    #[test]
    fn only_the_login_page_itself_may_ask_for_a_token_from_a_browser() {
        assert!(origin_allowed(None, 10_001));
        assert!(origin_allowed(Some("http://127.0.0.1:10001"), 10_001));
        assert!(origin_allowed(Some("http://localhost:10001"), 10_001));
        for other in [
            "http://127.0.0.1:10002",
            "https://127.0.0.1:10001",
            "http://evil.example",
            "null",
            "",
        ] {
            assert!(!origin_allowed(Some(other), 10_001), "{other}");
        }
    }

    #[test]
    fn a_token_request_is_json_with_exactly_an_email() {
        for body in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"email": 5}"#,
            br#"{"mail": "a@example.com"}"#,
            br#"{"email": "a@example.com", "admin": true}"#,
            b"\xff\xfe",
        ] {
            let e = token_request(body).expect_err("refused");
            assert!(e.starts_with("expected {\"email\""), "{e}");
        }
        let e = token_request(br#"{"email": "nobody"}"#).expect_err("refused");
        assert!(e.contains("no @"), "{e}");
    }
}
