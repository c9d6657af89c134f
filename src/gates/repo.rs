//! Storage of gates and their versions (both engines).

use crate::domain::policy::{self, GateDefinition, Policy};
use crate::on_db;
use crate::on_tx;
use crate::server::db::{Db, Tx};

/// Creates a gate with `definition` as its first, published version. Returns the gate id.
pub async fn create_published(
    tx: &mut Tx,
    id: &str,
    definition: &GateDefinition,
    by: Option<&str>,
    at: i64,
) -> Result<(), sqlx::Error> {
    let json = serde_json::to_string(definition).expect("gate definitions serialise");
    on_tx!(tx, |c| {
        sqlx::query("INSERT INTO gates (id, key, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(&definition.key)
            .bind(&definition.name)
            .bind(at)
            .execute(&mut *c)
            .await?;
        sqlx::query(
            "INSERT INTO gate_versions (gate_id, version, definition, created_by, created_at, \
             published_by, published_at) VALUES ($1, 1, $2, $3, $4, $3, $4)",
        )
        .bind(id)
        .bind(&json)
        .bind(by)
        .bind(at)
        .execute(&mut *c)
        .await?;
        Ok(())
    })
}

#[derive(sqlx::FromRow)]
struct PublishedRow {
    gate_id: String,
    version: i64,
    definition: String,
}

/// The policy in force, with the stored id of each gate so requests can reference it.
pub struct LivePolicy {
    pub policy: Policy,
    /// (gate key, gate id)
    gate_ids: Vec<(String, String)>,
}

/// What gating one request decided, ready to store on it.
pub struct Gating {
    pub evaluation: policy::Evaluation,
    pub explanation: String,
    pub gate_id: Option<String>,
    pub gate_version: Option<i64>,
    pub matched_rules: Vec<String>,
}

impl LivePolicy {
    pub fn new(policy: Policy, gate_ids: Vec<(String, String)>) -> LivePolicy {
        LivePolicy { policy, gate_ids }
    }

    pub fn gate(&self, facts: &policy::Facts<'_>) -> Gating {
        let evaluation = self.policy.evaluate(facts);
        let explanation = self.policy.explain(facts, &evaluation);
        let deciding = evaluation.deciding_gate();
        Gating {
            gate_id: deciding
                .and_then(|g| self.gate_ids.iter().find(|(k, _)| *k == g.gate_key))
                .map(|(_, id)| id.clone()),
            gate_version: deciding.map(|g| g.version),
            matched_rules: deciding
                .map(|g| g.matched_rules.clone())
                .unwrap_or_default(),
            explanation,
            evaluation,
        }
    }
}

/// The live policy: the newest published version of every gate.
pub async fn live_policy(db: &Db) -> anyhow::Result<LivePolicy> {
    let rows: Vec<PublishedRow> = on_db!(db, |p| {
        sqlx::query_as(
            "SELECT v.gate_id, v.version, v.definition FROM gate_versions v \
             WHERE v.published_at IS NOT NULL AND v.version = (SELECT MAX(w.version) \
             FROM gate_versions w WHERE w.gate_id = v.gate_id AND w.published_at IS NOT NULL) \
             ORDER BY v.gate_id",
        )
        .fetch_all(p)
        .await
    })?;
    let mut defs = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    for r in rows {
        let d: GateDefinition = serde_json::from_str(&r.definition)?;
        ids.push((d.key.clone(), r.gate_id));
        defs.push((d, r.version));
    }
    Ok(LivePolicy::new(policy::compile(defs)?, ids))
}

/// What identifies the set of published gate versions: published versions are never edited or
/// deleted (a draft is edited until it is published; only drafts are discarded), so a publish
/// always changes the count, and a rebuilt database (demo `--force`) changes the latest
/// publication time. The version and length sums guard against a rebuilt database that happens
/// to match both. Cheap to read: `gate_versions` holds tens of rows.
type PolicyStamp = (i64, i64, i64, i64);

const POLICY_STAMP: &str = "SELECT COUNT(*), COALESCE(MAX(published_at), 0), \
     CAST(COALESCE(SUM(version), 0) AS BIGINT), CAST(COALESCE(SUM(LENGTH(definition)), 0) AS BIGINT) \
     FROM gate_versions WHERE published_at IS NOT NULL";

/// Compiled live policies by database, each with the stamp it was compiled under.
type PolicyCache = std::collections::HashMap<String, (PolicyStamp, std::sync::Arc<LivePolicy>)>;

fn database_identity(db: &Db) -> String {
    match db {
        Db::Sqlite(p) => format!(
            "sqlite:{}",
            p.connect_options().get_filename().to_string_lossy()
        ),
        Db::Postgres(p) => {
            let o = p.connect_options();
            format!(
                "postgres:{}:{}/{}",
                o.get_host(),
                o.get_port(),
                o.get_database().unwrap_or_default()
            )
        }
    }
}

/// The live policy as [`live_policy`] reads it, compiled once per set of published versions.
///
/// Each call reads the stamp of the published versions from the database (one small query)
/// and recompiles only when it changed, so a publish committed by any process sharing the
/// database is in force for every submission that starts after it; never a stale policy.
/// The stamp is read before the policy, so a publish racing with the reload can only make the
/// cached policy newer than its stamp, which the next call corrects by reloading.
pub async fn live_policy_cached(db: &Db) -> anyhow::Result<std::sync::Arc<LivePolicy>> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<PolicyCache>> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let stamp: PolicyStamp = on_db!(db, |p| sqlx::query_as(POLICY_STAMP).fetch_one(p).await)?;
    let identity = database_identity(db);
    if let Some((cached, live)) = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&identity)
    {
        if *cached == stamp {
            return Ok(live.clone());
        }
    }
    let live = std::sync::Arc::new(live_policy(db).await?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(identity, (stamp, live.clone()));
    Ok(live)
}
