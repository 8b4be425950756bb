//! The audit log on its own: group commit, chain, tamper detection, torn-tail recovery.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use portcullis::audit::chain::AuditKey;
use portcullis::audit::verify::{verify_files, Reason};
use portcullis::audit::{AuditDecision, AuditEvent, AuditLog, AuditOptions};

struct Fixture {
    _dir: tempfile::TempDir,
    options: AuditOptions,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut options = AuditOptions::new(
        dir.path().join("audit/audit.log"),
        dir.path().join("keys/audit.key"),
    );
    options.checkpoint_every = 5;
    options.retry_interval = Duration::from_millis(100);
    Fixture { _dir: dir, options }
}

impl Fixture {
    fn key(&self) -> AuditKey {
        AuditKey::load(&self.options.key_file).unwrap()
    }

    fn verify(&self) -> Result<u64, portcullis::audit::verify::VerifyFailure> {
        verify_files(
            &self.key(),
            &self.options.path,
            &self.options.checkpoint_path,
        )
        .unwrap()
        .map(|r| r.last_seq)
    }

    fn lines(&self) -> Vec<Vec<u8>> {
        std::fs::read(&self.options.path)
            .unwrap()
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn write_lines(&self, lines: &[Vec<u8>]) {
        std::fs::write(&self.options.path, lines.concat()).unwrap();
    }
}

fn event(n: usize) -> AuditEvent {
    let mut e = AuditEvent::new(
        "tool_execution",
        "svc:op",
        AuditDecision::Allowed,
        "allowed",
    );
    e.request_id = Some(format!("req-{n}"));
    e
}

async fn write_sequentially(options: &AuditOptions, n: usize) {
    let log = AuditLog::open_with(options.clone()).unwrap();
    for i in 0..n {
        log.record(event(i)).await.unwrap();
    }
    log.close();
}

fn seqs(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_concurrent_records_get_contiguous_seqs_and_a_valid_chain() {
    let f = fixture();
    let log = Arc::new(AuditLog::open_with(f.options.clone()).unwrap());
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.record(event(i)).await.unwrap().seq })
        })
        .collect();
    let mut acked = Vec::new();
    for task in tasks {
        acked.push(task.await.unwrap());
    }
    acked.sort_unstable();
    assert_eq!(acked, (1..=1000).collect::<Vec<u64>>());
    Arc::into_inner(log).unwrap().close();
    // Every line parses on its own: no interleaved bytes.
    assert_eq!(seqs(&f.options.path), (1..=1000).collect::<Vec<u64>>());
    assert_eq!(f.verify(), Ok(1000));
}

#[tokio::test]
async fn flipped_bit_is_reported_at_the_record_it_hit() {
    let f = fixture();
    write_sequentially(&f.options, 20).await;
    assert_eq!(f.verify(), Ok(20));
    let mut lines = f.lines();
    let at = lines[6].len() / 2;
    lines[6][at] ^= 0x01;
    f.write_lines(&lines);
    let failure = f.verify().unwrap_err();
    assert_eq!(failure.seq, 7, "{failure}");
}

#[tokio::test]
async fn every_single_byte_flip_is_detected() {
    let f = fixture();
    write_sequentially(&f.options, 3).await;
    let original = std::fs::read(&f.options.path).unwrap();
    for i in 0..original.len() {
        let mut bytes = original.clone();
        bytes[i] ^= 0x20;
        std::fs::write(&f.options.path, &bytes).unwrap();
        assert!(f.verify().is_err(), "flip at byte {i} went unnoticed");
    }
}

#[tokio::test]
async fn deleted_middle_record_is_reported_as_a_sequence_gap() {
    let f = fixture();
    write_sequentially(&f.options, 20).await;
    let mut lines = f.lines();
    lines.remove(9);
    f.write_lines(&lines);
    let failure = f.verify().unwrap_err();
    assert_eq!(failure.seq, 10, "{failure}");
    assert!(matches!(
        failure.reason,
        Reason::Sequence {
            expected: 10,
            found: 11
        }
    ));
}

#[tokio::test]
async fn swapped_records_are_reported_at_the_first_out_of_place() {
    let f = fixture();
    write_sequentially(&f.options, 20).await;
    let mut lines = f.lines();
    lines.swap(11, 12);
    f.write_lines(&lines);
    let failure = f.verify().unwrap_err();
    assert_eq!(failure.seq, 12, "{failure}");
}

#[tokio::test]
async fn inserted_forged_record_is_reported() {
    let f = fixture();
    write_sequentially(&f.options, 10).await;
    let mut lines = f.lines();
    let forger = AuditKey::from_bytes(&[9; 32]);
    let mut forged = event(99);
    forged.seq = Some(5);
    let body = serde_json::to_vec(&forged).unwrap();
    let (line, _) = forger.seal("", &body);
    lines.insert(4, line);
    lines.remove(5);
    f.write_lines(&lines);
    let failure = f.verify().unwrap_err();
    assert_eq!((failure.seq, failure.reason), (5, Reason::Chain));
}

#[tokio::test]
async fn truncated_tail_is_detected_against_the_checkpoint_file() {
    let f = fixture();
    write_sequentially(&f.options, 20).await;
    let lines = f.lines();
    f.write_lines(&lines[..17]);
    let failure = f.verify().unwrap_err();
    assert!(
        matches!(
            failure.reason,
            Reason::Truncated {
                last: 17,
                checkpoint: 20
            }
        ),
        "{failure}"
    );
    assert_eq!(failure.seq, 18);
}

#[tokio::test]
async fn torn_last_line_is_truncated_on_open_and_a_recovery_record_appended() {
    let f = fixture();
    write_sequentially(&f.options, 4).await;
    let mut bytes = std::fs::read(&f.options.path).unwrap();
    bytes.extend_from_slice(br#"{"seq":5,"timestamp":"2026-"#);
    std::fs::write(&f.options.path, &bytes).unwrap();
    assert!(matches!(
        f.verify().unwrap_err().reason,
        Reason::TornTail { .. }
    ));
    let log = AuditLog::open_with(f.options.clone()).unwrap();
    let receipt = log.record(event(5)).await.unwrap();
    assert_eq!(receipt.seq, 6);
    log.close();
    let text = std::fs::read_to_string(&f.options.path).unwrap();
    let recovery: serde_json::Value = serde_json::from_str(text.lines().nth(4).unwrap()).unwrap();
    assert_eq!(recovery["eventType"], "recovery");
    assert_eq!(recovery["seq"], 5);
    assert_eq!(f.verify(), Ok(6));
}

#[tokio::test]
async fn reopening_continues_the_chain() {
    let f = fixture();
    write_sequentially(&f.options, 3).await;
    write_sequentially(&f.options, 3).await;
    assert_eq!(seqs(&f.options.path), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(f.verify(), Ok(6));
}

#[tokio::test]
async fn altered_tail_refuses_to_open() {
    let f = fixture();
    write_sequentially(&f.options, 3).await;
    let mut lines = f.lines();
    let at = lines[2].len() / 3;
    lines[2][at] ^= 0x02;
    f.write_lines(&lines);
    let err = AuditLog::open_with(f.options.clone()).unwrap_err();
    assert!(err.to_string().contains("audit verify"), "{err}");
}

#[test]
fn key_inside_the_audit_directory_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let options = AuditOptions::new(dir.path().join("audit.log"), dir.path().join("audit.key"));
    let err = AuditLog::open_with(options).unwrap_err();
    assert!(
        err.to_string().contains("inside the audit directory"),
        "{err}"
    );
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A11: size rotation renames the file to `<name>.<first seq>`, the new file's first record is
/// a `rotation` record chained to the previous file's last record, and verify spans the set.
#[tokio::test]
async fn rotation_by_size_chains_each_file_to_the_previous_one() {
    let mut f = fixture();
    f.options.rotate_bytes = Some(2_000);
    write_sequentially(&f.options, 60).await;
    let rotated = portcullis::audit::verify::rotated_files(&f.options.path).unwrap();
    assert!(rotated.len() >= 3, "{rotated:?}");
    let mut files = rotated.clone();
    files.push(f.options.path.clone());
    for pair in files.windows(2) {
        let before = records(&pair[0]);
        let after = records(&pair[1]);
        let last = before.last().unwrap();
        let first = &after[0];
        assert_eq!(first["eventType"], "rotation");
        assert_eq!(first["seq"].as_u64(), last["seq"].as_u64().map(|s| s + 1));
        assert_eq!(first["detail"]["previousChain"], last["chain"]);
        assert_eq!(first["detail"]["previousLastSeq"], last["seq"]);
        let name = pair[0].file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(first["detail"]["previousFile"], name.as_str());
        assert!(name.ends_with(&format!("{:020}", before[0]["seq"].as_u64().unwrap())));
    }
    let total = 60 + rotated.len() as u64;
    assert_eq!(f.verify(), Ok(total));
    // Reopening continues the chain in the current file.
    write_sequentially(&f.options, 1).await;
    assert!(f.verify().unwrap() > total);
}

#[tokio::test]
async fn a_missing_middle_file_is_reported() {
    let mut f = fixture();
    f.options.rotate_bytes = Some(2_000);
    write_sequentially(&f.options, 60).await;
    let rotated = portcullis::audit::verify::rotated_files(&f.options.path).unwrap();
    std::fs::remove_file(&rotated[1]).unwrap();
    let failure = f.verify().unwrap_err();
    assert!(
        matches!(failure.reason, Reason::MissingFile { .. }),
        "{failure}"
    );
}

#[tokio::test]
async fn rotation_by_time_and_retention_by_count_keep_a_verifiable_suffix() {
    let mut f = fixture();
    f.options.rotate_bytes = None;
    f.options.rotate_interval = Some(Duration::from_millis(30));
    f.options.retain_files = Some(2);
    let log = AuditLog::open_with(f.options.clone()).unwrap();
    for i in 0..5 {
        log.record(event(i)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    log.close();
    let rotated = portcullis::audit::verify::rotated_files(&f.options.path).unwrap();
    assert_eq!(rotated.len(), 2, "{rotated:?}");
    let report = verify_files(&f.key(), &f.options.path, &f.options.checkpoint_path)
        .unwrap()
        .unwrap();
    assert!(report.first_seq > 1, "older files were removed: {report:?}");
    assert_eq!(report.files, 3);
}

/// A12: with a queue of 2, a burst of 300 concurrent records waits for room: none is dropped
/// and the sequence stays contiguous.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_makes_callers_wait_and_drops_nothing() {
    let mut f = fixture();
    f.options.queue_capacity = 2;
    f.options.max_batch = 1;
    let log = Arc::new(AuditLog::open_with(f.options.clone()).unwrap());
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.record(event(i)).await.map(|r| r.seq) })
        })
        .collect();
    let mut acked = Vec::new();
    for task in tasks {
        acked.push(task.await.unwrap().expect("never refused, never dropped"));
    }
    acked.sort_unstable();
    assert_eq!(acked, (1..=300).collect::<Vec<u64>>());
    Arc::try_unwrap(log).unwrap().close();
    assert_eq!(seqs(&f.options.path), (1..=300).collect::<Vec<u64>>());
    assert_eq!(f.verify(), Ok(300));
}

#[tokio::test]
async fn record_all_returns_once_every_record_of_the_request_is_on_disk_in_order() {
    let f = fixture();
    let log = AuditLog::open_with(f.options.clone()).unwrap();
    log.record_all(vec![]).await.unwrap();
    log.record_all(vec![event(0), event(1), event(2)])
        .await
        .unwrap();
    // No sync, no close: what `record_all` returned for is already in the file.
    let ids: Vec<String> = std::fs::read_to_string(&f.options.path)
        .unwrap()
        .lines()
        .map(|l| {
            let record: serde_json::Value = serde_json::from_str(l).unwrap();
            record["requestId"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(ids, ["req-0", "req-1", "req-2"]);
    assert_eq!(seqs(&f.options.path), [1, 2, 3]);
    log.close();
    assert_eq!(f.verify().unwrap(), 3);
}
