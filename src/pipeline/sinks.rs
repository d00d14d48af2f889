//! Where each signal goes: our OTLP wire, the console, or nowhere.

// With the `otel` feature alone no transport exists: an OTLP sink cannot be built.
#![cfg_attr(not(any(feature = "http", feature = "grpc")), allow(unreachable_code))]

use std::sync::mpsc::Sender;

use super::shipper::{retry_hook, Done, Signal};
use crate::config::{BuildError, ExporterKind, Settings};
use crate::wire::{RetryPolicy, Target, Wire};

/// Where one signal goes.
pub(crate) enum Sink {
    Otlp(Wire),
    Console,
    None,
}

/// Builds `signal`'s sink as the settings say; its retries are reported on `done`. Must run inside a tokio
/// runtime (tonic connects lazily on it).
pub(crate) fn sink(signal: Signal, s: &Settings, done: Sender<Done>) -> Result<Sink, BuildError> {
    let kind = match signal {
        Signal::Traces => s.traces,
        Signal::Metrics => s.metrics,
    };
    Ok(match kind {
        ExporterKind::None => Sink::None,
        ExporterKind::Console => Sink::Console,
        ExporterKind::Otlp => {
            let env = |k: &str| std::env::var(k).ok();
            let target = match signal {
                Signal::Traces => Target::traces(s, &env)?,
                Signal::Metrics => Target::metrics(s, &env)?,
            };
            Sink::Otlp(Wire::new(&target, RetryPolicy::default())?.on_retry(retry_hook(signal, done)))
        }
    })
}
