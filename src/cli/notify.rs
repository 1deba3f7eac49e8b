//! `firedrill notify`: trying the notification channels of the main config, and the
//! outbox where every notification waits until it is delivered or expires.

use std::path::Path;
use std::sync::Arc;

use firedrill::config::MainConfig;
use firedrill::notify::Notifier;

use super::{open_catalog, NotifyCommand};

/// Every `notify` command but `outbox` needs channels configured, and channels that can
/// be built (their secrets read).
pub(super) async fn notify(catalog: &Path, config: &MainConfig, command: NotifyCommand) -> u8 {
    // The outbox is the catalog's: reading it needs no channel, and none of their secrets.
    let command = match command {
        NotifyCommand::Outbox { limit, json } => return outbox(catalog, limit, json).await,
        other => other,
    };
    if config.notify.channels.is_empty() {
        errln!("error: no notification channels configured\n  hint: add [[notify.channel]] tables to the file given with --config");
        return 2;
    }
    let notifiers = match firedrill::notify::build_notifiers(&config.notify, &config.base_dir) {
        Ok(n) => n,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    match command {
        NotifyCommand::Test { channel, json } => test(&notifiers, channel.as_deref(), json).await,
        NotifyCommand::Flush { now } => flush(catalog, config, &notifiers, now).await,
        NotifyCommand::Outbox { .. } => unreachable!("the outbox is read above"),
        NotifyCommand::Digest { channel, drills } => {
            digest(
                catalog,
                config,
                &notifiers,
                channel.as_deref(),
                &drills.resolve(config),
            )
            .await
        }
    }
}

/// Sends the digest of every drill in `dir` now (not claimed: the schedule's own digests
/// are unaffected); 2 unless every channel accepted it.
async fn digest(
    catalog: &Path,
    config: &MainConfig,
    notifiers: &[Arc<dyn Notifier>],
    only: Option<&str>,
    dir: &Path,
) -> u8 {
    let spec = &config.notify;
    let channels: Vec<String> = match only {
        Some(c) => match spec.channels.iter().find(|(n, _)| n == c) {
            None => {
                errln!("error: no channel named {c}");
                return 2;
            }
            Some((_, k)) if !k.takes_digests() => {
                errln!("error: channel {c} is a {} channel: it takes pages, not digests\n  hint: name a chat, email or webhook channel", k.type_name());
                return 2;
            }
            Some(_) => vec![c.to_string()],
        },
        None => match &spec.digest {
            Some(d) => d.channels.clone(),
            None => spec
                .channels
                .iter()
                .filter(|(_, k)| k.takes_digests())
                .map(|(n, _)| n.clone())
                .collect(),
        },
    };
    if channels.is_empty() {
        errln!("error: no channel takes digests\n  hint: add a chat, email or webhook [[notify.channel]] (PagerDuty and Alertmanager take pages only)");
        return 2;
    }
    let files = match firedrill::config::drill_files(dir) {
        Ok(f) => f,
        Err(e) => {
            errln!(
                "error: {}: cannot read the drills directory: {e}\n  hint: pass --drills-dir, or set drills_dir in --config",
                dir.display()
            );
            return 2;
        }
    };
    // A file that does not validate is left out, and said so: the digest of the others
    // is still worth sending.
    let mut drills = std::collections::BTreeMap::new();
    for f in files {
        match firedrill::config::load_drill(&f) {
            Ok(d) => {
                drills.entry(d.name.clone()).or_insert(d);
            }
            Err(p) => errln!(
                "warning: {} left out of the digest: {} problem(s); see `firedrill validate {}`",
                f.display(),
                p.0.len(),
                f.display()
            ),
        }
    }
    let c = match open_catalog(catalog).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let digest = match firedrill::notify::Digest::build(
        c.as_ref(),
        drills.values(),
        spec,
        None,
        jiff::Timestamp::now(),
    )
    .await
    {
        Ok(d) => d,
        Err(e) => {
            errln!("error: {e}");
            return 2;
        }
    };
    let mut failed = 0;
    for (name, r) in firedrill::notify::digest::send(notifiers, &channels, &digest).await {
        match r {
            Ok(()) => outln!(
                "ok    {name}: digest of {} drills accepted",
                digest.drills.len()
            ),
            Err(e) => {
                failed += 1;
                outln!("FAIL  {name}: {}", firedrill::secret::scrub(&e.to_string()));
            }
        }
    }
    if failed > 0 {
        2
    } else {
        0
    }
}

/// A test page through each channel (or `only` one); 2 unless every one accepted it.
async fn test(notifiers: &[Arc<dyn Notifier>], only: Option<&str>, json: bool) -> u8 {
    if let Some(c) = only {
        if !notifiers.iter().any(|n| n.name() == c) {
            errln!("error: no channel named {c}");
            return 2;
        }
    }
    let mut failed = 0;
    let mut results = Vec::new();
    for (name, r) in firedrill::notify::send_test(notifiers, only).await {
        let error = r
            .err()
            .map(|e| firedrill::secret::scrub(&e.to_string()).into_owned());
        failed += usize::from(error.is_some());
        if json {
            results.push(serde_json::json!({
                "channel": name,
                "accepted": error.is_none(),
                "error": error,
            }));
            continue;
        }
        match error {
            None => outln!("ok    {name}: accepted"),
            Some(e) => outln!("FAIL  {name}: {e}"),
        }
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&results).unwrap_or_default()
        );
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
    let c = match open_catalog(catalog).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let delivered = if now {
        firedrill::notify::deliver_all_pending(c.as_ref(), &config.notify, notifiers).await
    } else {
        firedrill::notify::deliver_due(c.as_ref(), &config.notify, notifiers).await
    };
    match delivered {
        Ok(d) => {
            outln!(
                "sent {}, retrying {}, expired {}",
                d.sent,
                d.retrying,
                d.expired
            );
            if d.retrying > 0 {
                1
            } else {
                0
            }
        }
        Err(e) => {
            errln!("error: {e}");
            2
        }
    }
}

/// The newest `limit` notifications of the outbox, whatever their state.
async fn outbox(catalog: &Path, limit: usize, json: bool) -> u8 {
    let c = match open_catalog(catalog).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    match c.outbox(limit).await {
        Ok(items) if json => {
            // Each page as the object it is, not a string of JSON inside the JSON.
            let items: Vec<serde_json::Value> = items
                .iter()
                .map(|i| {
                    let mut v = serde_json::to_value(i).unwrap_or_default();
                    if let Ok(page) = serde_json::from_str::<serde_json::Value>(&i.payload) {
                        v["payload"] = page;
                    }
                    v
                })
                .collect();
            // Rows written by older versions may hold a URL: nothing secret is listed.
            let text = serde_json::to_string_pretty(&items).unwrap_or_default();
            outln!("{}", firedrill::secret::scrub(&text));
            0
        }
        Ok(items) => {
            for i in items {
                outln!(
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
            errln!("error: {e}");
            2
        }
    }
}
