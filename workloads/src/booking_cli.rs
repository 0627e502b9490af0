//! `twinkle booking check|rebuild`: the seat inventory against the outcomes
//! topic. Progress goes to stderr; the result to stdout (a table, or JSON
//! with `-o json`); the exit status says whether everything agrees.

use std::io::{IsTerminal as _, Write as _};

use anyhow::Context as _;
use twinkle_workloads::{
    backend::{
        kafka::{self, KafkaLog, Topics},
        redis_store::{RedisStore, redacted},
    },
    ports::BookingOutcome,
    rebuild::{self, Report},
};

use super::{BookingCommand, Output, load_event};

pub async fn run(command: BookingCommand) -> anyhow::Result<()> {
    let (args, rebuilding) = match command {
        BookingCommand::Check(args) => (args, false),
        BookingCommand::Rebuild(args) => (args, true),
    };
    let event = load_event(&args.event)?;
    let topics = match &args.topic_prefix {
        Some(prefix) => Topics::with_prefix(prefix),
        None => Topics::for_event(&event.id),
    };
    let outcomes: KafkaLog<BookingOutcome> =
        KafkaLog::new(kafka::producer(&args.kafka)?, &args.kafka, topics.outcomes);
    let store = RedisStore::connect(&args.redis)
        .await
        .with_context(|| format!("connecting to Redis at {}", redacted(&args.redis)))?;
    let tty = std::io::stderr().is_terminal();
    let progress = move |read: u64, total: u64| {
        let mut err = std::io::stderr();
        let end = if tty && read < total { "\r" } else { "\n" };
        let _ = write!(err, "replaying outcomes: {read}/{total} records{end}");
        let _ = err.flush();
    };
    eprintln!(
        "{} event {} from topic {}",
        if rebuilding { "rebuilding" } else { "checking" },
        event.id,
        outcomes.topic()
    );
    let report = if rebuilding {
        rebuild::rebuild(&event, &outcomes, &store, &progress).await?
    } else {
        rebuild::check(&event, &outcomes, &store, &progress).await?
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Human => print!("{}", human(&report)),
    }
    if !report.ok() {
        anyhow::bail!("the inventory does not agree with the outcomes log (see above)");
    }
    Ok(())
}

fn human(r: &Report) -> String {
    let mut out = format!(
        "event {}: {} outcome records, {} requests decided, {} repeats\n",
        r.event, r.records, r.decided, r.repeats
    );
    let projected = r
        .projected_watermark
        .map_or_else(|| "none (empty)".to_owned(), |w| w.to_string());
    out.push_str(&format!(
        "projection watermark: {projected} of {} decisions (lag {})\n",
        r.decided, r.projection_lag
    ));
    out.push_str(&format!(
        "{:<16} {:>8} {:>10} {:>10} {:>10}  {}\n",
        "SLOT", "CAPACITY", "REMAINING", "CONFIRMED", "IN LOG", "OK"
    ));
    for s in &r.slots {
        let (remaining, confirmed) = s.store.as_ref().map_or(("-".into(), "-".into()), |c| {
            (c.remaining.to_string(), c.confirmed.to_string())
        });
        out.push_str(&format!(
            "{:<16} {:>8} {:>10} {:>10} {:>10}  {}\n",
            s.slot,
            s.capacity,
            remaining,
            confirmed,
            s.confirmed_in_log,
            if s.ok { "yes" } else { "NO" }
        ));
    }
    for v in &r.violations {
        out.push_str(&format!("VIOLATION: {v}\n"));
    }
    out
}
