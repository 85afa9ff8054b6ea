//! Which HTTP proxy a connection goes through: the one place that decides it, for the SLS
//! client, the credential providers, the HEC sink and the syslog sink.
//!
//! Each side (`[source]`, `[sink]`) has its own [`ProxyConfig`]; [`route`] turns it, the
//! environment and one target into a [`Route`]:
//!
//! 1. an explicit `proxy` key is used for every target of that side, loopback included
//!    (an operator who names a proxy means it), except hosts its `no_proxy` list matches;
//! 2. otherwise `HTTPS_PROXY` (for `https://` targets and TLS syslog) or `HTTP_PROXY` (for
//!    `http://` targets and plain TCP syslog), upper case first, then lower case, as curl
//!    reads them; `NO_PROXY`/`no_proxy` exempts hosts, unless the side has its own
//!    `no_proxy` key, which replaces it;
//! 3. a loopback target (`127.0.0.0/8`, `::1`, `localhost`) is never sent to a proxy taken
//!    from the environment: a proxy elsewhere cannot reach this machine's loopback, and an
//!    inherited `HTTP_PROXY` once carried the HEC token to a proxy for a local receiver.
//!
//! A proxy URL must have a scheme (`http://` or `https://`): `proxy:3128` is refused with
//! the key or variable that holds it, because guessing (curl assumes `http://`) hides the
//! typo of a user who meant `https://`. Proxy credentials come from the URL's user info
//! (typically in `HTTPS_PROXY`) or from a `proxy_credentials_file` (`user:password`); they
//! are [`SecretString`]s and never part of what [`Proxy`]'s `Display` prints.
//!
//! It also speaks HTTP `CONNECT` ([`connect_tunnel`]) for callers that open raw TCP
//! connections (syslog over TCP/TLS); reqwest does its own tunnelling from the [`Proxy`]
//! handed to it. [`explain`] turns a failure seen through a proxy into the sentence an
//! operator needs (a 407 asks for credentials, a refused `CONNECT`, an unreachable proxy).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};

/// The proxy keys of one side, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// `proxy`: the proxy URL for every target of this side.
    pub proxy: Option<String>,
    /// `no_proxy`: hosts never proxied (comma separated: `*`, `host`, `.domain`, an IP, a
    /// CIDR); replaces `NO_PROXY` for this side.
    pub no_proxy: Option<String>,
    /// `proxy_credentials_file`: a file holding `user:password` for the proxy.
    pub credentials_file: Option<PathBuf>,
}

/// A configuration problem, with the key (or environment variable) that holds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ProxyError {
    /// The full config key (`source.proxy`) or the environment variable (`HTTPS_PROXY`).
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// How a proxy is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyScheme {
    /// Plain HTTP to the proxy.
    Http,
    /// TLS to the proxy itself.
    Https,
}

/// Username and password for the proxy (`Proxy-Authorization: Basic`).
#[derive(Debug, Clone)]
pub struct ProxyAuth {
    /// User name.
    pub username: String,
    /// Password (redacted in `Debug`).
    pub password: SecretString,
}

/// A proxy to use, with where its setting came from.
#[derive(Debug, Clone)]
pub struct Proxy {
    /// How the proxy is reached.
    pub scheme: ProxyScheme,
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port (default 80 for `http://`, 443 for `https://`).
    pub port: u16,
    /// Credentials, if any.
    pub auth: Option<ProxyAuth>,
    /// The key or environment variable that named it (`sink.proxy`, `HTTPS_PROXY`).
    pub origin: String,
}

impl Proxy {
    /// `http(s)://host:port` without credentials: what logs and errors show, and what
    /// reqwest is given (credentials go through [`Proxy::auth`]).
    pub fn url(&self) -> String {
        let scheme = match self.scheme {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
        };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// The `Proxy-Authorization` header value, when credentials are set.
    pub fn authorization(&self) -> Option<SecretString> {
        self.auth.as_ref().map(|a| {
            let raw = format!("{}:{}", a.username, a.password.expose_secret());
            SecretString::from(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ))
        })
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.url(), self.origin)?;
        if self.auth.is_some() {
            f.write_str(" with credentials")?;
        }
        Ok(())
    }
}

/// Where connections to one target go.
#[derive(Debug, Clone)]
pub enum Route {
    /// Straight to the target; the reason is for the start-up log.
    Direct(&'static str),
    /// Through this proxy.
    Via(Proxy),
}

impl Route {
    /// The proxy, if any.
    pub fn proxy(&self) -> Option<&Proxy> {
        match self {
            Route::Direct(_) => None,
            Route::Via(p) => Some(p),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Direct(why) => write!(f, "direct ({why})"),
            Route::Via(p) => write!(f, "proxy {p}"),
        }
    }
}

/// Applies `route` to a reqwest client: direct means no proxy at all (reqwest would
/// otherwise read the environment itself, loopback included).
pub fn apply(builder: reqwest::ClientBuilder, route: &Route) -> reqwest::ClientBuilder {
    let Route::Via(p) = route else {
        return builder.no_proxy();
    };
    match reqwest::Proxy::all(p.url()) {
        Ok(mut proxy) => {
            if let Some(auth) = &p.auth {
                proxy = proxy.basic_auth(&auth.username, auth.password.expose_secret());
            }
            builder.proxy(proxy)
        }
        // `url()` is built from parsed parts, which reqwest accepts.
        Err(_) => builder.no_proxy(),
    }
}

/// Decides the route to `target_host` for a connection that is TLS to the target (`tls`:
/// an `https://` URL or syslog over TLS) or not. `prefix` is the side's key prefix
/// (`source`, `sink`) for error messages; `env` reads the environment.
pub fn route(
    config: &ProxyConfig,
    prefix: &str,
    env: &dyn Fn(&str) -> Option<String>,
    tls: bool,
    target_host: &str,
) -> Result<Route, ProxyError> {
    let env_nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let no_proxy = match &config.no_proxy {
        Some(list) => Some(list.clone()),
        None => env_nonempty("NO_PROXY").or_else(|| env_nonempty("no_proxy")),
    };
    let (text, origin) = match &config.proxy {
        Some(url) if !url.trim().is_empty() => (url.clone(), format!("{prefix}.proxy")),
        _ => {
            let names: [&str; 2] = if tls {
                ["HTTPS_PROXY", "https_proxy"]
            } else {
                ["HTTP_PROXY", "http_proxy"]
            };
            let Some((name, url)) = names.iter().find_map(|n| env_nonempty(n).map(|v| (*n, v)))
            else {
                return Ok(Route::Direct("no proxy configured"));
            };
            if is_loopback(target_host) {
                return Ok(Route::Direct("loopback is never proxied"));
            }
            (url, name.to_owned())
        }
    };
    if no_proxy
        .as_deref()
        .is_some_and(|l| matches_no_proxy(l, target_host))
    {
        return Ok(Route::Direct("the host matches no_proxy"));
    }
    let mut proxy = parse_proxy_url(&text, &origin)?;
    if let Some(path) = &config.credentials_file {
        proxy.auth = Some(read_credentials(
            path,
            &format!("{prefix}.proxy_credentials_file"),
        )?);
    }
    Ok(Route::Via(proxy))
}

/// Parses `http(s)://[user:password@]host[:port][/]`.
pub fn parse_proxy_url(text: &str, origin: &str) -> Result<Proxy, ProxyError> {
    let err = |message: String| ProxyError {
        key: origin.to_owned(),
        message,
    };
    let shown = redact_userinfo(text.trim());
    let Some((scheme, rest)) = text.trim().split_once("://") else {
        return Err(err(format!(
            "proxy URL {shown:?} has no scheme: write http://{shown} (or https:// for a TLS proxy)"
        )));
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => ProxyScheme::Http,
        "https" => ProxyScheme::Https,
        other => {
            return Err(err(format!(
                "proxy URL {shown:?}: scheme {other:?} is not supported; use http:// or https://"
            )));
        }
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') || authority.contains('?') {
        return Err(err(format!(
            "proxy URL {shown:?} must not have a path or query: write {}://host:port",
            if scheme == ProxyScheme::Http {
                "http"
            } else {
                "https"
            }
        )));
    }
    let (auth, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hp)) => {
            let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (
                Some(ProxyAuth {
                    username: decode(user),
                    password: SecretString::from(decode(pass)),
                }),
                hp,
            )
        }
        None => (None, authority),
    };
    let default_port = if scheme == ProxyScheme::Http { 80 } else { 443 };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| err(format!("proxy URL {shown:?} has an unclosed '['")))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(err(format!("proxy URL {shown:?} has junk after ']'"))),
        };
        (h.to_owned(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(err(format!("proxy URL {shown:?} has no host")));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| err(format!("proxy URL {shown:?} has an invalid port {p:?}")))?,
        None => default_port,
    };
    Ok(Proxy {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
        auth,
        origin: origin.to_owned(),
    })
}

/// `text` with the password of any user info replaced, for error messages.
fn redact_userinfo(text: &str) -> String {
    match text.rsplit_once('@') {
        Some((before, after)) => {
            let scheme_end = before.find("://").map_or(0, |i| i + 3);
            let (scheme, userinfo) = before.split_at(scheme_end);
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}{user}:***@{after}")
        }
        None => text.to_owned(),
    }
}

fn read_credentials(path: &Path, key: &str) -> Result<ProxyAuth, ProxyError> {
    let err = |message: String| ProxyError {
        key: key.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    let line = text.trim_end_matches(['\n', '\r']);
    match line.split_once(':') {
        Some((user, pass)) if !user.is_empty() && !line.contains('\n') => Ok(ProxyAuth {
            username: user.to_owned(),
            password: SecretString::from(pass.to_owned()),
        }),
        _ => Err(err(format!(
            "{} must hold one line `user:password`",
            path.display()
        ))),
    }
}

/// `localhost`, `*.localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    match h.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            h == "localhost" || h.ends_with(".localhost")
        }
    }
}

/// Whether a `NO_PROXY`-style list exempts `host`: `*`; a name matching exactly or as a
/// subdomain (`example.com` and `.example.com` both match `a.example.com`); an IP; a CIDR.
pub fn matches_no_proxy(list: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.to_ascii_lowercase();
            if let (Some(ip), Some((net, bits))) = (ip, entry.split_once('/')) {
                return cidr_contains(net, bits, ip);
            }
            // A port in the entry (`host:8080`) is ignored, as most tools do.
            let name = match entry.rsplit_once(':') {
                Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
                _ => entry.as_str(),
            };
            let name = name.trim_start_matches('.').trim_start_matches("*.");
            host == name || host.ends_with(&format!(".{name}"))
        })
}

fn cidr_contains(net: &str, bits: &str, ip: IpAddr) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    let to_bits = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let ((n, nlen), (a, alen)) = (to_bits(net), to_bits(ip));
    if nlen != alen || bits > nlen {
        return false;
    }
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    n & mask == a & mask
}

/// Why a `CONNECT` through a proxy failed.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// Reading or writing the proxy connection failed.
    #[error("proxy {proxy}: {source}")]
    Io {
        /// The proxy URL (no credentials).
        proxy: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The proxy answered something other than 2xx.
    #[error("proxy {proxy} answered the CONNECT to {target} with {status_line:?}; {hint}")]
    Refused {
        /// The proxy URL (no credentials).
        proxy: String,
        /// `host:port` asked for.
        target: String,
        /// The proxy's status line.
        status_line: String,
        /// What to do.
        hint: &'static str,
    },
}

/// Longest proxy answer header block read before giving up (a proxy's error page can be
/// long, its headers are not).
const MAX_CONNECT_RESPONSE: usize = 16 * 1024;

/// Sends `CONNECT host:port` over `stream` (already connected to `proxy`, and TLS-wrapped
/// for an `https://` proxy) and reads the answer. On success the stream is a tunnel to the
/// target.
pub async fn connect_tunnel<S>(
    stream: &mut S,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<(), TunnelError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io = |source| TunnelError::Io {
        proxy: proxy.url(),
        source,
    };
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = proxy.authorization() {
        request.push_str("Proxy-Authorization: ");
        request.push_str(auth.expose_secret());
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    // Read the header block byte-wise through a small buffer that is dropped before the
    // caller uses the stream: nothing after the blank line may be consumed.
    let mut reader = BufReader::with_capacity(1, &mut *stream);
    let mut status_line = String::new();
    let mut read = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).await.map_err(io)?;
        if n == 0 {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the proxy closed the connection during CONNECT",
            )));
        }
        read += n;
        if read > MAX_CONNECT_RESPONSE {
            return Err(io(std::io::Error::other(
                "the proxy's CONNECT answer is too long",
            )));
        }
        if status_line.is_empty() {
            status_line = line.trim_end().to_owned();
            continue;
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    let code = status_line.split_whitespace().nth(1).unwrap_or("");
    if code.starts_with('2') {
        return Ok(());
    }
    Err(TunnelError::Refused {
        proxy: proxy.url(),
        target,
        hint: status_hint(code, proxy.auth.is_some()),
        status_line,
    })
}

fn status_hint(code: &str, has_auth: bool) -> &'static str {
    match (code, has_auth) {
        ("407", false) => {
            "the proxy requires authentication: put the user in the proxy URL \
             (http://user:password@host:port) or set `proxy_credentials_file`"
        }
        ("407", true) => "the proxy refused our credentials: check the proxy user and password",
        ("403", _) => {
            "the proxy does not allow this target: allow CONNECT to it (and its port) in the \
             proxy's configuration, or exempt the host with `no_proxy`"
        }
        _ => "check that the proxy can reach the target, or exempt the host with `no_proxy`",
    }
}

/// A sentence for a failure seen through `proxy`, from the error's text (reqwest and
/// hyper report tunnel failures only as text): `None` when nothing points at the proxy.
pub fn explain(proxy: &Proxy, error_chain: &str) -> Option<String> {
    let e = error_chain.to_ascii_lowercase();
    let hint = if e.contains("proxy authorization required")
        || e.contains("407")
        || e.contains("proxy authentication required")
    {
        status_hint("407", proxy.auth.is_some())
    } else if e.contains("unsuccessful tunnel") {
        "the proxy refused to open a tunnel (CONNECT) to the target: allow it in the proxy's \
         configuration, or exempt the host with `no_proxy`"
    } else if e.contains("connect") || e.contains("dns error") {
        // Also hyper-util's "tunnel error: failed to create underlying connection".
        "cannot connect to the proxy: check that it runs and the proxy URL is right"
    } else {
        return None;
    };
    Some(format!(
        "through proxy {} (set by {}): {hint}",
        proxy.url(),
        proxy.origin
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn via(r: Route) -> Proxy {
        match r {
            Route::Via(p) => p,
            Route::Direct(why) => panic!("direct: {why}"),
        }
    }

    #[test]
    fn environment_by_scheme_and_loopback_stays_direct() {
        let env = env_of(&[
            ("HTTPS_PROXY", "http://u:p%40ss@proxy.example:3128"),
            ("http_proxy", "http://plain:8080"),
        ]);
        let cfg = ProxyConfig::default();
        let p = via(route(&cfg, "source", &env, true, "proj.sls.example").unwrap());
        assert_eq!(p.url(), "http://proxy.example:3128");
        assert_eq!(p.origin, "HTTPS_PROXY");
        let auth = p.auth.as_ref().unwrap();
        assert_eq!(
            (auth.username.as_str(), auth.password.expose_secret()),
            ("u", "p@ss")
        );
        assert!(!p.to_string().contains("p@ss") && !format!("{p:?}").contains("p@ss"));
        let p = via(route(&cfg, "sink", &env, false, "splunk.example").unwrap());
        assert_eq!(
            (p.url().as_str(), p.origin.as_str()),
            ("http://plain:8080", "http_proxy")
        );
        for local in ["127.0.0.1", "localhost", "[::1]", "127.9.9.9"] {
            assert!(
                matches!(
                    route(&cfg, "sink", &env, true, local).unwrap(),
                    Route::Direct(_)
                ),
                "{local}"
            );
        }
        assert!(matches!(
            route(&cfg, "sink", &env_of(&[]), true, "x").unwrap(),
            Route::Direct(_)
        ));
    }

    #[test]
    fn explicit_key_wins_proxies_loopback_and_no_proxy_exempts() {
        let env = env_of(&[
            ("HTTPS_PROXY", "http://envproxy:1"),
            ("NO_PROXY", "x.example"),
        ]);
        let cfg = ProxyConfig {
            proxy: Some("https://cfgproxy".into()),
            no_proxy: Some(".corp.example, 10.0.0.0/8".into()),
            credentials_file: None,
        };
        let p = via(route(&cfg, "sink", &env, true, "127.0.0.1").unwrap());
        assert_eq!(
            (p.url().as_str(), p.origin.as_str()),
            ("https://cfgproxy:443", "sink.proxy")
        );
        // The key's list replaces NO_PROXY.
        assert!(
            route(&cfg, "sink", &env, true, "x.example")
                .unwrap()
                .proxy()
                .is_some()
        );
        for exempt in ["a.corp.example", "corp.example", "10.1.2.3"] {
            assert!(
                route(&cfg, "sink", &env, true, exempt)
                    .unwrap()
                    .proxy()
                    .is_none(),
                "{exempt}"
            );
        }
        let p = route(&ProxyConfig::default(), "sink", &env, true, "a.x.example").unwrap();
        assert!(p.proxy().is_none());
    }

    #[test]
    fn bad_urls_name_the_key_and_the_fix() {
        let cfg = ProxyConfig {
            proxy: Some("proxy:3128".into()),
            ..ProxyConfig::default()
        };
        let e = route(&cfg, "source", &env_of(&[]), true, "h").unwrap_err();
        assert_eq!(e.key, "source.proxy");
        assert!(e.message.contains("http://proxy:3128"), "{e}");
        let e = route(
            &ProxyConfig::default(),
            "sink",
            &env_of(&[("HTTPS_PROXY", "user:secret@proxy:1")]),
            true,
            "h",
        )
        .unwrap_err();
        assert_eq!(e.key, "HTTPS_PROXY");
        assert!(!e.message.contains("secret"), "{e}");
        for bad in ["socks5://p:1", "http://p:x", "http://", "http://p/path"] {
            assert!(parse_proxy_url(bad, "k").is_err(), "{bad}");
        }
        let p = parse_proxy_url("http://[::1]:8080/", "k").unwrap();
        assert_eq!(p.url(), "http://[::1]:8080");
    }

    #[test]
    fn credentials_file() {
        let dir = std::env::temp_dir().join(format!("shipper-net-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("creds");
        std::fs::write(&file, "alice:s3cret\n").unwrap();
        let cfg = ProxyConfig {
            proxy: Some("http://p:1".into()),
            no_proxy: None,
            credentials_file: Some(file.clone()),
        };
        let p = via(route(&cfg, "sink", &env_of(&[]), true, "h").unwrap());
        assert_eq!(
            p.authorization().unwrap().expose_secret(),
            "Basic YWxpY2U6czNjcmV0"
        );
        std::fs::write(&file, "no-colon\n").unwrap();
        let e = route(&cfg, "sink", &env_of(&[]), true, "h").unwrap_err();
        assert_eq!(e.key, "sink.proxy_credentials_file");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn connect_reads_exactly_the_answer() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (mut client, mut server) = tokio::io::duplex(4096);
        let proxy = parse_proxy_url("http://bob:pw@p:3128", "HTTPS_PROXY").unwrap();
        let srv = tokio::spawn(async move {
            let mut buf = vec![0u8; 1024];
            let n = server.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            server
                .write_all(b"HTTP/1.1 200 Connection established\r\nX: y\r\n\r\nhello")
                .await
                .unwrap();
            req
        });
        connect_tunnel(&mut client, &proxy, "sls.example", 443)
            .await
            .unwrap();
        let mut rest = [0u8; 5];
        client.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"hello");
        let req = srv.await.unwrap();
        assert!(
            req.starts_with("CONNECT sls.example:443 HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(
            req.contains("Proxy-Authorization: Basic Ym9iOnB3\r\n"),
            "{req}"
        );

        let (mut client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1024];
            let _ = server.read(&mut buf).await;
            let _ = server
                .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                .await;
        });
        let anonymous = parse_proxy_url("http://p:3128", "sink.proxy").unwrap();
        let e = connect_tunnel(&mut client, &anonymous, "h", 6514)
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("http://p:3128") && text.contains("proxy_credentials_file"),
            "{text}"
        );
    }

    #[test]
    fn explanations_point_at_the_proxy() {
        let p = parse_proxy_url("http://p:3128", "HTTPS_PROXY").unwrap();
        let s = explain(&p, "error sending request: proxy authorization required").unwrap();
        assert!(
            s.contains("http://p:3128") && s.contains("HTTPS_PROXY") && s.contains("user"),
            "{s}"
        );
        let s = explain(
            &p,
            "client error (Connect): tunnel error: failed to create underlying connection: \
             tcp connect error: Connection refused",
        )
        .unwrap();
        assert!(s.contains("cannot connect to the proxy"), "{s}");
        let s = explain(&p, "tunnel error: unsuccessful tunnel").unwrap();
        assert!(s.contains("refused to open a tunnel"), "{s}");
        assert!(explain(&p, "invalid peer certificate").is_none());
    }
}
