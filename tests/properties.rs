//! Property tests: any interleaving, duplication or loss of valid sessions' events yields a well-formed span
//! forest, and the token totals are those of the events that survived.

mod common;

use std::collections::{HashMap, HashSet};

use bamboo_otel::console::MetricTotals;
use bamboo_otel::events::*;
use bamboo_otel::ids::{domain, SpanId};
use bamboo_otel::semconv::Instrument;
use common::*;
use proptest::prelude::*;

/// Sessions described by (rounds, each with a tool count); all events of all sessions, in their natural order.
fn sessions(shape: &[Vec<u8>]) -> Vec<MetricsEvent> {
    let mut events = Vec::new();
    let mut t = 0i64;
    let mut n = 0;
    let mut id = |prefix: &str| {
        n += 1;
        format!("{prefix}{n}")
    };
    for (s, rounds) in shape.iter().enumerate() {
        let sid = format!("s{s}");
        events.push(session_started(&id("e"), t, &sid, "gpt-4o", None));
        for (r, tools) in rounds.iter().enumerate() {
            let rid = format!("{sid}-r{r}");
            t += 100;
            events.push(round_started(&id("e"), t, &sid, &rid, "gpt-4o"));
            for k in 0..*tools {
                t += 50;
                events.push(tool(&id("e"), t, &sid, &rid, &format!("{rid}-t{k}"), "Read", 40, k % 2 == 0));
            }
            t += 100;
            let u = usage(100 + r as u64, 10 + *tools as u64);
            events.push(round_completed(&id("e"), t, &sid, &rid, 300, u));
        }
        t += 50;
        events.push(session_completed(&id("e"), t, &sid, SessionStatus::Completed));
    }
    events
}

fn shapes() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(0u8..4, 0..4), 1..4)
}

/// A stream with some events dropped, some repeated (same event id), in any order.
fn mangled() -> impl Strategy<Value = (Vec<MetricsEvent>, Vec<MetricsEvent>)> {
    shapes().prop_flat_map(|shape| {
        let events = sessions(&shape);
        let n = events.len();
        (
            Just(events),
            prop::collection::vec(0u8..10, n),
            Just(()).prop_perturb(move |_, mut rng| {
                let mut order: Vec<usize> = (0..n * 2).collect();
                // Fisher-Yates with proptest's rng, so failures shrink and replay.
                for i in (1..order.len()).rev() {
                    let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                    order.swap(i, j);
                }
                order
            }),
        )
            .prop_map(|(events, fate, order)| {
                // fate: 0 = lost, 1 = sent twice, otherwise sent once.
                let kept: Vec<MetricsEvent> =
                    events.iter().zip(&fate).filter(|(_, f)| **f != 0).map(|(e, _)| e.clone()).collect();
                let mut copies: Vec<Option<MetricsEvent>> = vec![None; events.len() * 2];
                for (i, (e, f)) in events.iter().zip(&fate).enumerate() {
                    if *f != 0 {
                        copies[i] = Some(e.clone());
                    }
                    if *f == 1 {
                        copies[events.len() + i] = Some(e.clone());
                    }
                }
                let stream = order.iter().filter_map(|&i| copies[i].clone()).collect();
                (kept, stream)
            })
    })
}

fn session_of(e: &MetricsEvent) -> Option<&str> {
    match e {
        MetricsEvent::Chat(c) => Some(c.session_id()),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_interleaving_duplication_or_loss_gives_a_well_formed_forest((kept, stream) in mangled()) {
        let out = run(&stream);
        // Span ids are unique.
        let ids: HashSet<_> = out.spans.iter().map(|s| s.span_id).collect();
        prop_assert_eq!(ids.len(), out.spans.len(), "duplicate span ids");
        // Sessions whose every session-level event was lost have no span to be a parent.
        let mut session_events: HashMap<&str, bool> = HashMap::new();
        for e in &kept {
            if let Some(sid) = session_of(e) {
                let is_session = matches!(e, MetricsEvent::Chat(ChatEvent::SessionStarted { .. } | ChatEvent::SessionCompleted { .. }));
                *session_events.entry(sid).or_default() |= is_session;
            }
        }
        let mut headless: HashSet<SpanId> = session_events
            .iter()
            .filter(|(_, has)| !**has)
            .map(|(sid, _)| SpanId::derive(domain::SESSION, sid))
            .collect();
        // Likewise rounds whose start and completion were both lost, for the tool calls made in them.
        let mut round_events: HashMap<&str, bool> = HashMap::new();
        for e in &kept {
            match e {
                MetricsEvent::Chat(ChatEvent::ToolCalled { round_id, .. }) => {
                    round_events.entry(round_id).or_default();
                }
                MetricsEvent::Chat(ChatEvent::RoundStarted { round_id, .. } | ChatEvent::RoundCompleted { round_id, .. }) => {
                    *round_events.entry(round_id).or_default() = true;
                }
                _ => {}
            }
        }
        headless.extend(round_events.iter().filter(|(_, has)| !**has).map(|(r, _)| SpanId::derive(domain::ROUND, r)));
        for s in &out.spans {
            prop_assert!(s.end >= s.start, "{} ends before it starts", s.name);
            if let Some(p) = s.parent_span_id {
                prop_assert!(ids.contains(&p) || headless.contains(&p), "{} has a parent that is neither emitted nor lost", s.name);
                let parent_trace = out.spans.iter().find(|x| x.span_id == p).map(|x| x.trace_id);
                prop_assert!(parent_trace.map_or(true, |t| t == s.trace_id), "{} is in another trace than its parent", s.name);
            }
        }
        // Token totals are those of the round completions that survived, each counted once.
        let want: u64 = kept
            .iter()
            .filter_map(|e| match e {
                MetricsEvent::Chat(ChatEvent::RoundCompleted { usage, .. }) => Some(usage.prompt_tokens),
                _ => None,
            })
            .sum();
        let mut totals = MetricTotals::new();
        totals.extend(&out.metrics);
        let got = totals.total(Instrument::TokenUsage, &[("gen_ai.token.type", "input")]).sum;
        prop_assert_eq!(got, want as f64);
        // Every tool call that survived is one span.
        let tools = kept.iter().filter(|e| matches!(e, MetricsEvent::Chat(ChatEvent::ToolCalled { .. }))).count();
        prop_assert_eq!(out.spans.iter().filter(|s| s.name.starts_with("execute_tool")).count(), tools);
    }
}
