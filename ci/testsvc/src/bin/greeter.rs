//! Answers every TCP connection on port 7777 with what the network tests check from inside
//! the appliance: a greeting, /etc/resolv.conf as musl sees it, and link's memory use.
use std::io::Write;
use std::net::TcpListener;

/// VmRSS of the process named `link`, from /proc.
fn link_rss() -> String {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return "?".into();
    };
    for entry in dir.flatten() {
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        if status.lines().next() == Some("Name:\tlink") {
            if let Some(rss) = status.lines().find(|l| l.starts_with("VmRSS:")) {
                return rss["VmRSS:".len()..].trim().to_string();
            }
        }
    }
    "?".into()
}

fn main() {
    let listener = match TcpListener::bind("[::]:7777").or_else(|_| TcpListener::bind("0.0.0.0:7777")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("greeter: cannot listen on port 7777: {e}");
            std::process::exit(1);
        }
    };
    println!("greeter: listening on port 7777");
    for stream in listener.incoming().flatten() {
        let mut stream = stream;
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let _ = write!(
            stream,
            "hello from rustkrazy\nlink-rss: {}\n{}",
            link_rss(),
            resolv
        );
    }
}
