//! `firedrill notify`: trying the notification channels of the main config, and the
//! outbox where every notification waits until it is delivered or expires.

use std::path::Path;
use std::sync::Arc;

use firedrill::catalog::Catalog;
use firedrill::config::MainConfig;
use firedrill::notify::Notifier;

use super::{open_catalog, NotifyCommand};

/// Every `notify` command needs channels configured, and channels that can be built.
pub(super) async fn notify(catalog: &Path, config: &MainConfig, command: NotifyCommand) -> u8 {
    if config.notify.channels.is_empty() {
        eprintln!("error: no notification channels configured\n  hint: add [[notify.channel]] tables to the file given with --config");
        return 2;
    }
    let notifiers = match firedrill::notify::build_notifiers(&config.notify, &config.base_dir) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match command {
        NotifyCommand::Test { channel } => test(&notifiers, channel.as_deref()).await,
        NotifyCommand::Flush { now } => flush(catalog, config, &notifiers, now).await,
        NotifyCommand::Outbox { limit, json } => outbox(catalog, limit, json).await,
    }
}

/// A test page through each channel (or `only` one); 2 unless every one accepted it.
async fn test(notifiers: &[Arc<dyn Notifier>], only: Option<&str>) -> u8 {
    if let Some(c) = only {
        if !notifiers.iter().any(|n| n.name() == c) {
            eprintln!("error: no channel named {c}");
            return 2;
        }
    }
    let mut failed = 0;
    for (name, r) in firedrill::notify::send_test(notifiers, only).await {
        match r {
            Ok(()) => println!("ok    {name}: accepted"),
            Err(e) => {
                failed += 1;
                println!("FAIL  {name}: {}", firedrill::secret::scrub(&e.to_string()));
            }
        }
    }
    if failed > 0 {
        2
    } else {
        0
    }
}

/// Delivers what is due in the outbox (with `now`, everything pending); 1 when some are
/// still waiting for a retry.
async fn flush(
    catalog: &Path,
    config: &MainConfig,
    notifiers: &[Arc<dyn Notifier>],
    now: bool,
) -> u8 {
    let c = match open_catalog(catalog) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let delivered = if now {
        firedrill::notify::deliver_all_pending(&c, &config.notify, notifiers).await
    } else {
        firedrill::notify::deliver_due(&c, &config.notify, notifiers).await
    };
    match delivered {
        Ok(d) => {
            println!(
                "sent {}, retrying {}, expired {}",
                d.sent, d.retrying, d.expired
            );
            if d.retrying > 0 {
                1
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// The newest `limit` notifications of the outbox, whatever their state.
async fn outbox(catalog: &Path, limit: usize, json: bool) -> u8 {
    let c = match open_catalog(catalog) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match c.outbox(limit).await {
        Ok(items) if json => {
            // Rows written by older versions may hold a URL: nothing secret is listed.
            let text = serde_json::to_string_pretty(&items).unwrap_or_default();
            println!("{}", firedrill::secret::scrub(&text));
            0
        }
        Ok(items) => {
            for i in items {
                println!(
                    "{:>5} {:<8} {:<9} {:<16} {:<20} attempts {} {}",
                    i.id,
                    i.state,
                    i.kind,
                    i.channel,
                    i.drill,
                    i.attempts,
                    firedrill::secret::scrub(&i.last_error.unwrap_or_default())
                );
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
