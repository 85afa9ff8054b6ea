//! Hostile guest: tries to read a file, write a file, read the environment and arguments,
//! read stdin and open a TCP connection (address from config `connect`). Each attempt must
//! fail inside the sandbox; the guest reports what happened as one text emit per log:
//! `name=denied: …` or `name=ALLOWED: …`. It also prints to stdout and stderr, which the host
//! must capture into its log.

wit_bindgen::generate!({ path: "../../../wit", world: "formatter" });

use std::io::Read as _;

use shipper::plugin::types::{HecBody, HecEvent, Payload};

static CONFIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

struct SandboxEscape;

fn attempt<T: std::fmt::Debug, E: std::fmt::Display>(name: &str, result: Result<T, E>) -> String {
    match result {
        Ok(value) => format!("{name}=ALLOWED: {value:?}"),
        Err(e) => format!("{name}=denied: {e}"),
    }
}

fn escape_report() -> String {
    let config = CONFIG.get().map(String::as_str).unwrap_or("{}");
    let connect = guest_util::config_str(config, "connect").unwrap_or("127.0.0.1:9");
    let env_count = std::env::vars().count();
    let args_count = std::env::args().count();
    let mut stdin = String::new();
    let report = [
        attempt("read_file", std::fs::read_to_string("/etc/passwd")),
        attempt(
            "write_file",
            std::fs::write("/tmp/shipper-sandbox-escape", b"x"),
        ),
        attempt("read_dir", std::fs::read_dir("/").map(|d| d.count())),
        attempt("env_var", std::env::var("HOME")),
        if env_count == 0 {
            "env_all=denied: empty".to_owned()
        } else {
            format!("env_all=ALLOWED: {env_count} variables")
        },
        if args_count == 0 {
            "args=denied: empty".to_owned()
        } else {
            format!("args=ALLOWED: {args_count} arguments")
        },
        match std::io::stdin().read_to_string(&mut stdin) {
            Ok(0) => "stdin=denied: closed".to_owned(),
            Ok(n) => format!("stdin=ALLOWED: {n} bytes"),
            Err(e) => format!("stdin=denied: {e}"),
        },
        attempt(
            "tcp_connect",
            std::net::TcpStream::connect(connect).map(|_| ()),
        ),
        attempt(
            "tcp_bind",
            std::net::TcpListener::bind("127.0.0.1:0").map(|_| ()),
        ),
        attempt(
            "udp_bind",
            std::net::UdpSocket::bind("127.0.0.1:0").map(|_| ()),
        ),
    ];
    report.join("; ")
}

impl Guest for SandboxEscape {
    fn init(config: String) -> Result<PluginInfo, String> {
        let _ = CONFIG.set(config);
        Ok(PluginInfo {
            name: "sandbox-escape".into(),
            version: "0.0.1".into(),
            sdk: "wit-bindgen/0.61.1".into(),
        })
    }

    fn process(
        _batch: BatchInfo,
        group: Vec<u8>,
    ) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
        println!("sandbox-escape guest writes to stdout");
        eprintln!("sandbox-escape guest writes to stderr");
        let report = escape_report();
        Ok(guest_util::logs(&group)
            .into_iter()
            .map(|_| {
                Ok(vec![Emit {
                    route: None,
                    payload: Payload::Hec(HecEvent {
                        body: HecBody::Text(report.clone()),
                        time: None,
                        host: None,
                        source: None,
                        sourcetype: None,
                        index: None,
                        fields: Vec::new(),
                    }),
                }])
            })
            .collect())
    }
}

export!(SandboxEscape);
