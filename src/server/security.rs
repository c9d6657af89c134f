//! Web security middleware: cross-site request refusal (CSRF), security headers, and the client
//! address as seen through trusted proxies only.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// The client address: the TCP peer, unless that peer is a configured trusted proxy, in which
/// case the right-most `X-Forwarded-For` entry that is not itself a trusted proxy. A client
/// cannot choose its address by sending the header itself.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer_ip = peer.ip();
    if !trusted.contains(&peer_ip) {
        return peer_ip;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer_ip)
}

/// Whether a state-changing request came from one of our own pages. Browsers send
/// `Sec-Fetch-Site` (and `Origin` on every POST); a request another site made is refused.
pub fn is_same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let origin_host = origin.split("://").nth(1).unwrap_or("");
            !host.is_empty() && origin_host == host
        }
    }
}

/// Middleware: refuses cross-site state-changing requests. The agent API is exempt: it is
/// authenticated by bearer tokens, never by cookies, so a forged browser request carries nothing.
pub async fn csrf_guard(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !req.uri().path().starts_with("/api/v1/") && !is_same_origin(req.headers()) {
        tracing::warn!(path = %req.uri().path(), "refused a cross-site request");
        return (
            StatusCode::FORBIDDEN,
            "Refused: this request came from another site. Use Countersign's own pages.",
        )
            .into_response();
    }
    next.run(req).await
}

/// The Content-Security-Policy for pages that carry no inline script.
pub const BASE_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'self'; object-src 'none'";

/// The policy for server-rendered pages, whose one inline script (the island loader) carries
/// this response's nonce.
pub fn page_csp(nonce: &str) -> String {
    BASE_CSP.replace(
        "script-src 'self' 'wasm-unsafe-eval'",
        &format!("script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'"),
    )
}

/// Middleware: security headers on every response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(BASE_CSP),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_only_believed_from_trusted_proxies() {
        let client: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let proxy: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let trusted = vec!["10.0.0.2".parse().unwrap()];
        let spoof = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(client_ip(client, &spoof, &trusted), client.ip());
        assert_eq!(client_ip(client, &spoof, &[]), client.ip());
        let via_proxy = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7")]);
        assert_eq!(
            client_ip(proxy, &via_proxy, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy.ip());
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        assert!(is_same_origin(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!is_same_origin(&headers(&[(
            "sec-fetch-site",
            "cross-site"
        )])));
        assert!(!is_same_origin(&headers(&[(
            "sec-fetch-site",
            "same-site"
        )])));
        assert!(is_same_origin(&headers(&[
            ("origin", "http://app.example:3000"),
            ("host", "app.example:3000")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "app.example")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("origin", "null"),
            ("host", "app.example")
        ])));
        assert!(
            is_same_origin(&HeaderMap::new()),
            "non-browser clients send neither header"
        );
    }

    #[test]
    fn page_policy_adds_the_nonce_to_scripts_only() {
        let p = page_csp("abc123");
        assert!(p.contains("script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval'"));
        assert!(p.contains("frame-ancestors 'none'"));
        assert_eq!(p.matches("nonce-").count(), 1);
    }
}
