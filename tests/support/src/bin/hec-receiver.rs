//! A stand-alone Splunk HEC test receiver for demos and manual runs (the quickstart uses it):
//! the same in-process receiver the tests use, on a port, printing what arrives.
//!
//! ```text
//! hec-receiver [--listen 127.0.0.1:0] [--token TOKEN] [--print N]
//! ```
//! First stdout line: `listening on http://ADDR`. Then the first N events (pretty JSON) and a
//! count every 2 s; totals on SIGINT/SIGTERM. Not part of the product.

use std::time::Duration;

use shipper_test_support::hec_receiver::{HecReceiver, HecReceiverConfig, TokenSpec};

fn usage() -> ! {
    eprintln!("usage: hec-receiver [--listen ADDR] [--token TOKEN] [--print N]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut listen = "127.0.0.1:0".to_owned();
    let mut token = shipper_test_support::hec_receiver::TEST_TOKEN.to_owned();
    let mut print = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--listen" => listen = value(),
            "--token" => token = value(),
            "--print" => print = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let config = HecReceiverConfig {
        tokens: vec![TokenSpec::new(&token)],
        ..Default::default()
    };
    let receiver = HecReceiver::start_on(&listen, config).await;
    println!("listening on {}", receiver.url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    let mut shown = 0;
    let mut last = usize::MAX;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tick.tick() => {}
        }
        let events = receiver.events();
        for e in events.iter().skip(shown).take(print.saturating_sub(shown)) {
            println!(
                "{}",
                serde_json::to_string_pretty(&e.envelope).unwrap_or_default()
            );
            shown += 1;
        }
        if events.len() != last {
            eprintln!("hec-receiver: {} events received", events.len());
            last = events.len();
        }
    }
    println!(
        "hec-receiver: {} events received in total",
        receiver.event_count()
    );
}
