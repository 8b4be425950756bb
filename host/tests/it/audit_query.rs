//! Reading the audit log: cursor pages stable under appends, filters, the legacy array form,
//! `audit tail` (escaping, follow across rotation), and the cost of a page on a big log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis::audit::tail;
use portcullis::audit::{
    encode_cursor, AuditDecision, AuditEvent, AuditLog, AuditOptions, AuditQuery, Page, QueryParams,
};

fn open(dir: &tempfile::TempDir, durable: bool) -> Arc<AuditLog> {
    let mut options = AuditOptions::new(
        dir.path().join("audit/audit.log"),
        dir.path().join("audit.key"),
    );
    options.durable = durable;
    Arc::new(AuditLog::open_with(options).unwrap())
}

/// Record `n`: tool `svc:op{n%3}`, principal `p{n%2}`, every fifth denied.
fn event(n: u64) -> AuditEvent {
    let (kind, decision) = if n % 5 == 0 {
        ("authz_denial", AuditDecision::Denied)
    } else {
        ("tool_execution", AuditDecision::Allowed)
    };
    let mut event = AuditEvent::new(kind, &format!("svc:op{}", n % 3), decision, "allowed");
    event.principal = Some(format!("p{}", n % 2));
    event.request_id = Some(n.to_string());
    event
}

fn query(params: QueryParams<'_>) -> AuditQuery {
    AuditQuery::parse(params).unwrap()
}

fn page(log: &AuditLog, params: QueryParams<'_>) -> Page {
    log.page(&query(params)).unwrap()
}

fn seqs(page: &Page) -> Vec<u64> {
    page.events.iter().map(|e| e.seq.unwrap()).collect()
}

#[tokio::test]
async fn cursor_pages_see_every_record_once_while_records_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, false);
    for n in 1..=500 {
        log.record(event(n)).await.unwrap();
    }
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for n in 501..=1000 {
                log.record(event(n)).await.unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = page(
            &log,
            QueryParams {
                limit: Some("37"),
                cursor: Some(&cursor),
                ..Default::default()
            },
        );
        assert!(page.events.len() <= 37);
        seen.extend(seqs(&page));
        cursor = page.next_cursor;
        if !page.has_more && writer.is_finished() {
            // One more page after the writer finished catches its last records.
            let rest = self::page(
                &log,
                QueryParams {
                    cursor: Some(&cursor),
                    ..Default::default()
                },
            );
            seen.extend(seqs(&rest));
            assert!(!rest.has_more);
            break;
        }
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert_eq!(
        seen,
        (1..=1000).collect::<Vec<_>>(),
        "each record once, in order"
    );
}

#[tokio::test]
async fn filters_select_by_decision_principal_tool_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, false);
    for n in 1..=100 {
        log.record(event(n)).await.unwrap();
    }
    let all = |params: QueryParams<'_>| {
        page(
            &log,
            QueryParams {
                cursor: Some(""),
                limit: Some("10000"),
                ..params
            },
        )
    };
    let denied = all(QueryParams {
        decision: Some("denied"),
        ..Default::default()
    });
    assert_eq!(
        seqs(&denied),
        (1..=100).filter(|n| n % 5 == 0).collect::<Vec<_>>()
    );
    let narrow = all(QueryParams {
        decision: Some("allowed"),
        principal: Some("p1"),
        tool_id: Some("svc:op1"),
        event_type: Some("tool_execution"),
        ..Default::default()
    });
    let expected: Vec<u64> = (1..=100)
        .filter(|n| n % 5 != 0 && n % 2 == 1 && n % 3 == 1)
        .collect();
    assert_eq!(seqs(&narrow), expected);
    // Time: from is inclusive, to exclusive, on the record's timestamp.
    let whole = all(QueryParams::default());
    let t10 = whole.events[9].timestamp.clone();
    let t20 = whole.events[19].timestamp.clone();
    let window = all(QueryParams {
        from: Some(&t10),
        to: Some(&t20),
        ..Default::default()
    });
    assert!(window
        .events
        .iter()
        .all(|e| e.timestamp >= t10 && e.timestamp < t20));
    assert!(seqs(&window).contains(&10) && !seqs(&window).contains(&20));
    let future = all(QueryParams {
        from: Some("2999-01-01T00:00:00Z"),
        ..Default::default()
    });
    assert!(future.events.is_empty());
}

#[tokio::test]
async fn without_a_cursor_the_most_recent_come_back_and_the_cursor_polls_for_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, false);
    for n in 1..=50 {
        log.record(event(n)).await.unwrap();
    }
    let latest = page(
        &log,
        QueryParams {
            limit: Some("5"),
            ..Default::default()
        },
    );
    assert_eq!(seqs(&latest), vec![46, 47, 48, 49, 50]);
    assert!(latest.has_more);
    assert_eq!(latest.next_cursor, encode_cursor(50));
    for n in 51..=53 {
        log.record(event(n)).await.unwrap();
    }
    let new = page(
        &log,
        QueryParams {
            cursor: Some(&latest.next_cursor),
            ..Default::default()
        },
    );
    assert_eq!(seqs(&new), vec![51, 52, 53]);
    assert!(!new.has_more);
    // A cursor past the end is not an error: it simply finds nothing yet.
    let nothing = page(
        &log,
        QueryParams {
            cursor: Some(&encode_cursor(10_000)),
            ..Default::default()
        },
    );
    assert!(nothing.events.is_empty());
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn tail_prints_escaped_records_and_follows_across_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit/audit.log");
    {
        let log = open(&dir, true);
        for n in 1..=20 {
            let mut e = event(n);
            // A hostile principal: newline, ANSI clear-screen, C1 CSI, line separator.
            e.principal = Some(format!(
                "evil\n{{\"seq\":999}}\u{1b}[2J\u{9b}31m\u{2028}{n}"
            ));
            log.record(e).await.unwrap();
        }
    }
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(
        raw.iter().filter(|&&b| b == b'\n').count(),
        20,
        "one line per record"
    );
    assert!(raw.iter().all(|&b| b == b'\n' || (b >= 0x20 && b != 0x7f)));
    let text = String::from_utf8(raw).unwrap();
    assert!(!text.contains('\u{9b}') && !text.contains('\u{2028}'));

    let mut out = Sink::default();
    let everything = query(QueryParams::default());
    tail::last(&path, &everything, 3, &mut out).unwrap();
    let lines = out.lines();
    assert_eq!(lines.len(), 3);
    let last: AuditEvent = serde_json::from_str(&lines[2]).unwrap();
    assert_eq!(last.seq, Some(20));
    assert!(last.principal.unwrap().ends_with("20"));

    // Follow: new records appear, then the file is rotated (renamed + recreated) and the
    // follower continues with the new file.
    let stop = Arc::new(AtomicBool::new(false));
    let follower_out = Sink::default();
    let follower = {
        let (path, stop, mut out) = (path.clone(), stop.clone(), follower_out.clone());
        let only_denied = query(QueryParams {
            decision: Some("denied"),
            ..Default::default()
        });
        std::thread::spawn(move || {
            tail::follow(&path, &only_denied, 0, &mut out, &|| {
                stop.load(Ordering::SeqCst)
            })
        })
    };
    std::thread::sleep(tail::POLL * 2);
    {
        let log = open(&dir, true);
        for n in 21..=30 {
            log.record(event(n)).await.unwrap();
        }
    }
    std::thread::sleep(tail::POLL * 3);
    std::fs::rename(&path, dir.path().join("audit/audit.log.1")).unwrap();
    std::fs::write(&path, b"").unwrap();
    std::thread::sleep(tail::POLL * 3);
    let mut appended = event(35);
    appended.seq = Some(1);
    let mut line = serde_json::to_vec(&appended).unwrap();
    line.push(b'\n');
    std::fs::write(&path, &line).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while follower_out.lines().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(tail::POLL);
    }
    stop.store(true, Ordering::SeqCst);
    follower.join().unwrap().unwrap();
    let followed: Vec<String> = follower_out
        .lines()
        .iter()
        .map(|l| {
            serde_json::from_str::<AuditEvent>(l)
                .unwrap()
                .request_id
                .unwrap()
        })
        .collect();
    assert_eq!(followed, vec!["25", "30", "35"]);
}

/// A page read on a log of one million records costs the page, not the file.
///
/// `cargo test --release -p portcullis --test audit_query -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn page_read_on_a_million_records() {
    const RECORDS: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, false);
    let started = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for n in 0..RECORDS / 16 {
                    log.record(event(n * 16 + t)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let size = std::fs::metadata(dir.path().join("audit/audit.log"))
        .unwrap()
        .len();
    println!(
        "wrote {RECORDS} records ({} MB) in {:?}",
        size >> 20,
        started.elapsed()
    );
    drop(log);
    let reopened = Instant::now();
    let log = open(&dir, false);
    println!("reopen (index build): {:?}", reopened.elapsed());
    let time = |label: &str, params: QueryParams<'_>| {
        let q = query(params);
        let started = Instant::now();
        let runs = 20;
        let mut count = 0;
        for _ in 0..runs {
            count = log.page(&q).unwrap().events.len();
        }
        println!(
            "{label}: {count} records, {:?} per page",
            started.elapsed() / runs
        );
    };
    let middle = encode_cursor(RECORDS / 2);
    let near_end = encode_cursor(RECORDS - 100);
    time(
        "first page, limit 100 (cursor=)",
        QueryParams {
            cursor: Some(""),
            limit: Some("100"),
            ..Default::default()
        },
    );
    time(
        "middle page, limit 100",
        QueryParams {
            cursor: Some(&middle),
            limit: Some("100"),
            ..Default::default()
        },
    );
    time(
        "middle page, limit 1000",
        QueryParams {
            cursor: Some(&middle),
            limit: Some("1000"),
            ..Default::default()
        },
    );
    time(
        "latest 100 (no cursor)",
        QueryParams {
            limit: Some("100"),
            ..Default::default()
        },
    );
    time(
        "after a cursor near the end",
        QueryParams {
            cursor: Some(&near_end),
            ..Default::default()
        },
    );
    time(
        "selective filter, scan bound",
        QueryParams {
            cursor: Some(&middle),
            principal: Some("nobody"),
            ..Default::default()
        },
    );
}
