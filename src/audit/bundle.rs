//! The evidence bundle: one `.tar.gz` an auditor can take away and verify offline with
//! `countersign audit verify-bundle FILE` (or by hand, following its README).
//!
//! Contents: `events.jsonl` (the filtered events with their chain hashes), `snapshots.jsonl`
//! (every state version of the requests those events are about, with content hashes),
//! `policy_versions.jsonl` (every published gate version), `checkpoints.jsonl` (every signed
//! checkpoint), `public_key.txt`, `manifest.json` (SHA-256 of each file) and `manifest.sig`
//! (Ed25519 over the manifest's bytes). Files are written to a temporary directory while they
//! are hashed, so memory stays flat for any number of events.

use super::chain::{chain_hash, EventBody};
use super::checkpoints::Checkpoint;
use super::explorer::AuditFilter;
use super::queries::{events_after, EventQuery, FullEvent};
use super::signing::{checkpoint_message, verify_signature};
use crate::accounts::CurrentUser;
use crate::on_db;
use crate::server::{now_ms, AppState, Db};
use anyhow::{bail, Context as _};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::path::Path;

pub const FORMAT: &str = "countersign-evidence-bundle/1";

const README: &str = include_str!("bundle_readme.txt");

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub created_at: i64,
    pub created_by: String,
    /// The explorer filter the bundle was made from (a URL query string; empty for everything).
    pub filter: String,
    pub event_count: i64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub public_key: String,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ManifestFile {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotLine {
    request_id: String,
    version: i64,
    content_sha256: String,
    /// The snapshot exactly as stored; its SHA-256 is `content_sha256`.
    snapshot: String,
    cause: String,
    created_at: i64,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
struct PolicyVersionLine {
    gate_key: String,
    version: i64,
    definition: String,
    published_at: Option<i64>,
    published_by: Option<String>,
}

/// A file being written and hashed at once.
struct HashedFile {
    name: &'static str,
    file: std::io::BufWriter<std::fs::File>,
    hasher: Sha256,
    bytes: u64,
}

impl HashedFile {
    fn create(dir: &Path, name: &'static str) -> std::io::Result<HashedFile> {
        Ok(HashedFile {
            name,
            file: std::io::BufWriter::new(std::fs::File::create(dir.join(name))?),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        self.file.write_all(data)
    }

    fn line<T: Serialize>(&mut self, value: &T) -> anyhow::Result<()> {
        let mut text = serde_json::to_vec(value)?;
        text.push(b'\n');
        Ok(self.write(&text)?)
    }

    fn finish(mut self) -> std::io::Result<ManifestFile> {
        self.file.flush()?;
        Ok(ManifestFile {
            name: self.name.to_owned(),
            sha256: hex::encode(self.hasher.finalize()),
            bytes: self.bytes,
        })
    }
}

/// Builds the bundle for `q` into a temporary `.tar.gz` and returns it, rewound.
pub async fn build(
    state: &AppState,
    q: &EventQuery,
    filter: &str,
    created_by: &str,
) -> anyhow::Result<std::fs::File> {
    let dir = tempfile::tempdir()?;
    let mut events = HashedFile::create(dir.path(), "events.jsonl")?;
    let mut requests: BTreeSet<String> = BTreeSet::new();
    let (mut after, mut count, mut first, mut last) = (0_i64, 0_i64, None, None);
    loop {
        let page: Vec<FullEvent> = events_after(&state.db, q, after, 2_000).await?;
        let Some(tail) = page.last() else { break };
        after = tail.seq;
        for e in &page {
            first.get_or_insert(e.seq);
            last = Some(e.seq);
            count += 1;
            if let Some(r) = &e.request_id {
                requests.insert(r.clone());
            }
            events.line(e)?;
        }
    }
    let mut files = vec![events.finish()?];

    let mut snapshots = HashedFile::create(dir.path(), "snapshots.jsonl")?;
    let ids: Vec<String> = requests.into_iter().collect();
    for batch in ids.chunks(500) {
        for line in snapshots_of(&state.db, batch).await? {
            snapshots.line(&line)?;
        }
    }
    files.push(snapshots.finish()?);

    let mut policies = HashedFile::create(dir.path(), "policy_versions.jsonl")?;
    let versions: Vec<PolicyVersionLine> = on_db!(&state.db, |p| sqlx::query_as(
        "SELECT g.key AS gate_key, v.version, v.definition, v.published_at, v.published_by \
         FROM gate_versions v JOIN gates g ON g.id = v.gate_id \
         WHERE v.published_at IS NOT NULL ORDER BY g.key, v.version"
    )
    .fetch_all(p)
    .await)?;
    for v in &versions {
        policies.line(v)?;
    }
    files.push(policies.finish()?);

    let mut checkpoints = HashedFile::create(dir.path(), "checkpoints.jsonl")?;
    for cp in super::checkpoints::all(&state.db).await? {
        checkpoints.line(&cp)?;
    }
    files.push(checkpoints.finish()?);

    let public_key = state.audit_key.public_hex();
    let mut key_file = HashedFile::create(dir.path(), "public_key.txt")?;
    key_file.write(format!("{public_key}\n").as_bytes())?;
    files.push(key_file.finish()?);
    let mut readme = HashedFile::create(dir.path(), "README.txt")?;
    readme.write(README.as_bytes())?;
    files.push(readme.finish()?);

    let manifest = Manifest {
        format: FORMAT.to_owned(),
        created_at: now_ms(),
        created_by: created_by.to_owned(),
        filter: filter.to_owned(),
        event_count: count,
        first_seq: first,
        last_seq: last,
        public_key,
        files,
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
    std::fs::write(dir.path().join("manifest.json"), &manifest_bytes)?;
    std::fs::write(
        dir.path().join("manifest.sig"),
        format!("{}\n", state.audit_key.sign(&manifest_bytes)),
    )?;

    let names: Vec<String> = manifest
        .files
        .iter()
        .map(|f| f.name.clone())
        .chain(["manifest.json".to_owned(), "manifest.sig".to_owned()])
        .collect();
    tokio::task::spawn_blocking(move || -> anyhow::Result<std::fs::File> {
        let out = tempfile::tempfile()?;
        let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for name in &names {
            tar.append_path_with_name(dir.path().join(name), format!("evidence/{name}"))?;
        }
        let mut out = tar.into_inner()?.finish()?;
        use std::io::Seek as _;
        out.rewind()?;
        Ok(out)
    })
    .await?
}

async fn snapshots_of(db: &Db, ids: &[String]) -> Result<Vec<SnapshotLine>, sqlx::Error> {
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT request_id, version, content_sha256, snapshot, cause, created_at FROM request_states \
         WHERE request_id IN ({}) ORDER BY request_id, version",
        placeholders.join(", ")
    );
    type Row = (String, i64, String, String, String, i64);
    let rows: Vec<Row> = on_db!(db, |p| {
        let mut query = sqlx::query_as(&sql);
        for id in ids {
            query = query.bind(id);
        }
        query.fetch_all(p).await
    })?;
    Ok(rows
        .into_iter()
        .map(
            |(request_id, version, content_sha256, snapshot, cause, created_at)| SnapshotLine {
                request_id,
                version,
                content_sha256,
                snapshot,
                cause,
                created_at,
            },
        )
        .collect())
}

/// `GET /audit/export/bundle?<explorer filter>`
pub(super) async fn download(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    Query(filter): Query<AuditFilter>,
) -> Response {
    let user = match super::export::exporter(user) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let q = match super::export::checked(&filter) {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = super::export::record_export(&state.db, &user, "bundle", &filter).await {
        return r.into_response();
    }
    let file = match build(&state, &q, &filter.query_string(), &user.email).await {
        Ok(f) => f,
        Err(e) => {
            let err = crate::error::internal(format!("evidence bundle failed: {e:#}"));
            return (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response();
        }
    };
    let day = &crate::domain::time::iso_utc(now_ms())[..10];
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    (
        [
            (header::CONTENT_TYPE, "application/gzip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"countersign-evidence-{day}.tar.gz\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// What an offline verification found.
#[derive(Debug)]
pub struct BundleReport {
    pub events: i64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// Places where the filter skipped events (their links cannot be checked from the bundle).
    pub gaps: i64,
    pub snapshots: i64,
    pub checkpoints: i64,
    /// Checkpoints whose event is in the bundle and matched it.
    pub checkpoints_matched: i64,
    pub public_key: String,
    pub key_pinned: bool,
}

impl std::fmt::Display for BundleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "bundle verified")?;
        let range = match (self.first_seq, self.last_seq) {
            (Some(a), Some(b)) => format!("events {a}..{b}"),
            _ => "no events".to_owned(),
        };
        writeln!(
            f,
            "  {} events ({range}); every hash recomputed; {} gaps left by the filter",
            self.events, self.gaps
        )?;
        writeln!(
            f,
            "  {} state snapshots match their content hashes",
            self.snapshots
        )?;
        writeln!(
            f,
            "  {} signed checkpoints verify ({} match an event in the bundle)",
            self.checkpoints, self.checkpoints_matched
        )?;
        if self.key_pinned {
            writeln!(f, "  signed by the pinned key {}", self.public_key)
        } else {
            writeln!(
                f,
                "  signed by key {} (taken from the bundle: compare it with the key on the \
                 audit page, or pass --public-key to pin it)",
                self.public_key
            )
        }
    }
}

/// Reads and checks a bundle file. Every problem is an error naming what is wrong and where.
pub fn verify_bundle_file(path: &Path, pinned_key: Option<&str>) -> anyhow::Result<BundleReport> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let not_a_bundle = || format!("{} is not an evidence bundle (.tar.gz)", path.display());
    for entry in archive.entries().with_context(not_a_bundle)? {
        let mut entry = entry.with_context(not_a_bundle)?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let name = name.strip_prefix("evidence/").unwrap_or(&name).to_owned();
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .with_context(|| format!("cannot read {name}"))?;
        members.insert(name, data);
    }
    verify_members(&members, pinned_key)
}

fn verify_members(
    members: &BTreeMap<String, Vec<u8>>,
    pinned_key: Option<&str>,
) -> anyhow::Result<BundleReport> {
    let get = |name: &str| {
        members
            .get(name)
            .with_context(|| format!("the bundle has no {name}"))
    };
    let manifest_bytes = get("manifest.json")?;
    let manifest: Manifest =
        serde_json::from_slice(manifest_bytes).context("manifest.json is not a manifest")?;
    if manifest.format != FORMAT {
        bail!("unknown bundle format {:?}", manifest.format);
    }
    let key = pinned_key
        .unwrap_or(&manifest.public_key)
        .trim()
        .to_lowercase();
    if key != manifest.public_key {
        bail!(
            "the bundle is signed by key {}, not by the pinned key {key}",
            manifest.public_key
        );
    }
    let signature = String::from_utf8_lossy(get("manifest.sig")?)
        .trim()
        .to_owned();
    verify_signature(&key, manifest_bytes, &signature).map_err(|p| {
        anyhow::anyhow!("manifest.sig: {p} (the manifest was changed or not signed by this key)")
    })?;

    for f in &manifest.files {
        let data = get(&f.name)?;
        let actual = hex::encode(Sha256::digest(data));
        if actual != f.sha256 {
            bail!(
                "{}: its SHA-256 does not match the manifest (the file was changed)",
                f.name
            );
        }
    }
    for name in members.keys() {
        let listed = manifest.files.iter().any(|f| &f.name == name)
            || name == "manifest.json"
            || name == "manifest.sig";
        if !listed {
            bail!("{name}: not listed in the manifest (a file was added)");
        }
    }

    let mut event_hashes: BTreeMap<i64, String> = BTreeMap::new();
    let mut gated_hashes: BTreeMap<(String, i64), String> = BTreeMap::new();
    let (mut count, mut gaps) = (0_i64, 0_i64);
    let mut previous: Option<(i64, String)> = None;
    for (n, line) in lines(get("events.jsonl")?).enumerate() {
        let e: FullEvent = serde_json::from_slice(line)
            .with_context(|| format!("events.jsonl line {}: not an event", n + 1))?;
        let body = EventBody {
            seq: e.seq,
            occurred_at: e.occurred_at,
            actor_kind: e.actor_kind.clone(),
            actor_id: e.actor_id.clone(),
            event_type: e.event_type.clone(),
            request_id: e.request_id.clone(),
            detail: e.detail.clone(),
        };
        if chain_hash(&e.prev_hash, &body) != e.hash {
            bail!(
                "event {}: content does not match its hash (the event was changed)",
                e.seq
            );
        }
        if let Some((prev_seq, prev_hash)) = &previous {
            if e.seq <= *prev_seq {
                bail!("event {}: out of order after event {prev_seq}", e.seq);
            }
            if e.seq == prev_seq + 1 && &e.prev_hash != prev_hash {
                bail!(
                    "event {}: prev_hash does not match the hash of event {prev_seq}",
                    e.seq
                );
            }
            if e.seq > prev_seq + 1 {
                gaps += 1;
            }
        }
        if e.event_type == "request_gated" {
            if let (Some(r), Ok(detail)) = (
                &e.request_id,
                serde_json::from_str::<serde_json::Value>(&e.detail),
            ) {
                if let Some(h) = detail["content_sha256"].as_str() {
                    let version = detail["state_version"].as_i64().unwrap_or(1);
                    gated_hashes.insert((r.clone(), version), h.to_owned());
                }
            }
        }
        event_hashes.insert(e.seq, e.hash.clone());
        previous = Some((e.seq, e.hash));
        count += 1;
    }
    if count != manifest.event_count {
        bail!(
            "events.jsonl holds {count} events but the manifest says {}",
            manifest.event_count
        );
    }

    let mut snapshots = 0_i64;
    for (n, line) in lines(get("snapshots.jsonl")?).enumerate() {
        let s: SnapshotLine = serde_json::from_slice(line)
            .with_context(|| format!("snapshots.jsonl line {}: not a snapshot", n + 1))?;
        if hex::encode(Sha256::digest(s.snapshot.as_bytes())) != s.content_sha256 {
            bail!(
                "snapshot of {} version {}: does not match its content hash",
                s.request_id,
                s.version
            );
        }
        if let Some(h) = gated_hashes.get(&(s.request_id.clone(), s.version)) {
            if *h != s.content_sha256 {
                bail!(
                    "snapshot of {} version {}: differs from the hash recorded in the trail",
                    s.request_id,
                    s.version
                );
            }
        }
        snapshots += 1;
    }

    let (mut checkpoints, mut matched) = (0_i64, 0_i64);
    for (n, line) in lines(get("checkpoints.jsonl")?).enumerate() {
        let cp: Checkpoint = serde_json::from_slice(line)
            .with_context(|| format!("checkpoints.jsonl line {}: not a checkpoint", n + 1))?;
        if cp.public_key != key {
            bail!(
                "checkpoint at event {}: signed by another key {}",
                cp.seq,
                cp.public_key
            );
        }
        verify_signature(
            &key,
            &checkpoint_message(cp.seq, &cp.hash, cp.signed_at),
            &cp.signature,
        )
        .map_err(|p| anyhow::anyhow!("checkpoint at event {}: {p}", cp.seq))?;
        if let Some(h) = event_hashes.get(&cp.seq) {
            if *h != cp.hash {
                bail!(
                    "event {}: its hash differs from the signed checkpoint",
                    cp.seq
                );
            }
            matched += 1;
        }
        checkpoints += 1;
    }
    Ok(BundleReport {
        events: count,
        first_seq: manifest.first_seq,
        last_seq: manifest.last_seq,
        gaps,
        snapshots,
        checkpoints,
        checkpoints_matched: matched,
        public_key: key,
        key_pinned: pinned_key.is_some(),
    })
}

fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}
