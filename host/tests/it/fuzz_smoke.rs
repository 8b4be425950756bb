//! Stable smoke run of the fuzz targets (`portcullis::fuzzing`), for CI without nightly.
//!
//! Each target gets its seed corpus (`host/fuzz/corpus/<target>/`) and then inputs mutated
//! from it by a fixed-seed xorshift generator: bit flips, interesting bytes and tokens,
//! insertions, deletions, duplications and splices of two seeds. The sequence of inputs is
//! the same on every run; a run stops after [`MAX_MUTATIONS`] inputs or [`BUDGET`], whichever
//! comes first, so a slow machine checks a prefix of the same sequence. A failing input is
//! printed escaped, to be added to the corpus and as a regression test below.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use portcullis::fuzzing;

const BUDGET: Duration = Duration::from_secs(10);
const MAX_MUTATIONS: usize = 20_000;

const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\0",
    b"\n",
    b" ",
    b"..",
    b"/",
    b"%",
    b"?",
    b"#",
    b"@",
    b"{x}",
    b"$ref",
    b"\\u0000",
    b"\\ud800",
    b"-0",
    b"1e999",
    b"18446744073709551616",
    b"null",
    b"true",
    b"Bearer ",
    b"\"seq\":",
    b"\"chain\":\"",
    b"&a",
    b"*a",
    b"!!binary ",
];

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut XorShift, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = [0, 0x7f, 0x80, 0xff, b'0', b'9', b'"', b'\\'][rng.below(8)];
            }
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + rng.below(16)).min(data.len());
                data.drain(at..end);
            }
            4 => {
                let end = (at + rng.below(64)).min(data.len());
                let chunk = data[at..end].to_vec();
                data.splice(at..at, chunk);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ => data.insert(at, rng.next() as u8),
        }
    }
    data
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

fn run_one(target: &str, entry: fn(&[u8]), input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| entry(input))).is_err() {
        panic!(
            "fuzz target {target} failed on input b\"{}\"",
            input.escape_ascii()
        );
    }
}

fn smoke(target: &str, entry: fn(&[u8])) {
    let seeds = seeds(target);
    for seed in &seeds {
        run_one(target, entry, seed);
    }
    let started = Instant::now();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut ran = 0;
    while ran < MAX_MUTATIONS && started.elapsed() < BUDGET {
        let input = mutate(&mut rng, &seeds);
        run_one(target, entry, &input);
        ran += 1;
    }
    eprintln!("{target}: {} seeds, {ran} mutated inputs", seeds.len());
}

#[test]
fn bearer_token_parsing_and_validation_survive_the_corpus_and_mutations() {
    smoke("bearer_token", fuzzing::bearer_token);
}

#[test]
fn config_load_and_merge_survive_the_corpus_and_mutations() {
    smoke("config_load", fuzzing::config_load);
}

#[test]
fn openapi_loader_survives_the_corpus_and_mutations() {
    smoke("openapi", fuzzing::openapi);
}

#[test]
fn audit_verify_survives_the_corpus_and_flipped_bytes_never_verify() {
    smoke("audit_verify", fuzzing::audit_verify);
}

#[test]
fn approval_canonicalisation_survives_the_corpus_and_mutations() {
    smoke("approvals", fuzzing::approvals);
}

#[test]
fn url_building_survives_the_corpus_and_mutations() {
    smoke("url_build", fuzzing::url_build);
}

#[test]
fn mcp_door_messages_survive_the_corpus_and_mutations() {
    smoke("mcp_message", fuzzing::mcp_message);
}

#[test]
fn every_byte_of_the_reference_audit_log_flipped_fails_verification() {
    // Positions wrap modulo the log + checkpoints length (about 1 KiB), so this covers
    // every byte, with one mask: cheap and deterministic.
    for pos in 0..2048u32 {
        let mut input = vec![1u8];
        input.extend_from_slice(&pos.to_le_bytes());
        input.push(0x01);
        run_one("audit_verify", fuzzing::audit_verify, &input);
    }
}

#[test]
fn checkpoint_files_final_newline_turned_into_a_space_is_the_only_benign_flip() {
    // Found by cargo fuzz (audit_verify, 2026-12-03): byte 1071 of the reference log +
    // checkpoints is the checkpoint file's final newline; ^0x2a makes it a space.
    let mut input = vec![1u8];
    input.extend_from_slice(&1071u32.to_le_bytes());
    input.push(0x2a);
    run_one("audit_verify", fuzzing::audit_verify, &input);
}
