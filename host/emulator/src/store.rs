//! The data model: projects → logstores → shards, each shard an append-only list of encoded
//! LogGroups with their server receive times, addressed by cursors `base + index`
//! (docs/sls-protocol.md §7 "Cursors"). Also the logstore's consumer groups (the logic is in
//! [`crate::groups`]) and the hooks into [`crate::persist`].
//!
//! LogGroups are kept exactly as received (protobuf bytes), so serving PullLogs is framing +
//! concatenation, never re-encoding. Locks are std locks held for short, non-async sections;
//! readers clone the `Bytes` handles they need and build responses outside the lock.
//! Not here: HTTP, signatures, SPL, response encoding (see `routes`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::{MAX_SHARDS, validate_logstore_name, validate_project_name};
use crate::error::ApiError;
use crate::groups::{ConsumerGroup, MAX_GROUPS_PER_LOGSTORE, ShardInfo};
use crate::persist::{self, Persist};

/// Unix seconds now.
pub(crate) fn now_secs() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// Microseconds since the epoch now (checkpoint `updateTime`, docs/sls-protocol.md §5.10).
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Nanoseconds since the epoch now: the cursor base of new shards, which gives realistic
/// 19-digit cursor values (docs/sls-protocol.md §7 "Cursors").
fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX / 2))
}

/// Locks a mutex, ignoring poisoning: every critical section leaves the data consistent
/// before anything that could panic, and a poisoned emulator would be worse than useless.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One stored LogGroup.
#[derive(Debug, Clone)]
pub struct StoredGroup {
    /// The LogGroup's protobuf encoding (not framed as a LogGroupList element).
    pub bytes: Bytes,
    /// Server receive time, unix seconds (drives GetCursor by time and `x-log-cursor-time`).
    pub time: u32,
}

/// Every project.
pub(crate) struct Store {
    projects: RwLock<BTreeMap<String, Arc<Project>>>,
    persist: Option<Persist>,
}

/// A project.
pub(crate) struct Project {
    pub name: String,
    /// Changed by UpdateProject.
    description: RwLock<String>,
    pub create_time: u32,
    logstores: RwLock<BTreeMap<String, Arc<Logstore>>>,
}

/// Logstore settings as CreateLogstore sets them and GetLogstore returns them
/// (docs/sls-protocol.md §5.2 "Projects and logstores").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogstoreMeta {
    /// Retention in days (informational: the emulator never expires data).
    pub ttl: u32,
    /// `enable_tracking`.
    pub enable_tracking: bool,
    /// `autoSplit` (informational).
    pub auto_split: bool,
    /// `maxSplitShard` (informational).
    pub max_split_shard: u32,
    /// `appendMeta`: PutLogs adds `__receive_time__` and `__client_ip__` tags.
    pub append_meta: bool,
    /// `telemetryType`.
    pub telemetry_type: String,
    /// Creation time, unix seconds.
    pub create_time: u32,
    /// Last modification, unix seconds.
    pub last_modify_time: u32,
}

impl Default for LogstoreMeta {
    fn default() -> Self {
        let now = now_secs();
        Self {
            ttl: 30,
            enable_tracking: false,
            auto_split: false,
            max_split_shard: 64,
            append_meta: false,
            telemetry_type: String::new(),
            create_time: now,
            last_modify_time: now,
        }
    }
}

/// A logstore: shards plus consumer groups.
pub(crate) struct Logstore {
    pub name: String,
    pub meta: Mutex<LogstoreMeta>,
    shards: RwLock<Vec<Arc<Shard>>>,
    pub groups: Mutex<BTreeMap<String, ConsumerGroup>>,
    /// Round-robin position for load-balanced PutLogs.
    lb: AtomicUsize,
    /// Directory of the shard files when persisting.
    dir: Option<PathBuf>,
}

/// Shard status (ListShards `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShardStatus {
    ReadWrite,
    ReadOnly,
}

/// A shard: an append-only list of LogGroups.
pub(crate) struct Shard {
    pub id: u32,
    /// Unique for the process lifetime (shard ids repeat across logstores and re-creations);
    /// keys the PullLogs cache.
    pub uid: u64,
    /// Cursor of the first LogGroup (index 0).
    pub base: i64,
    pub create_time: u32,
    /// Inclusive start of the MD5 key range.
    pub begin_key: u128,
    /// Exclusive end of the key range (the last shard ends at `ffff…ff`,
    /// docs/sls-protocol.md §5.3).
    pub end_key: u128,
    /// Shards this one was split or merged from.
    pub parents: Vec<u32>,
    readonly: AtomicBool,
    groups: RwLock<Vec<StoredGroup>>,
    file: Option<Mutex<std::fs::File>>,
}

impl Store {
    pub fn new(persist: Option<Persist>) -> Self {
        Self {
            projects: RwLock::new(BTreeMap::new()),
            persist,
        }
    }

    pub fn persist(&self) -> Option<&Persist> {
        self.persist.as_ref()
    }

    pub fn project(&self, name: &str) -> Result<Arc<Project>, ApiError> {
        read(&self.projects)
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::project_not_exist(name))
    }

    pub fn projects(&self) -> Vec<Arc<Project>> {
        read(&self.projects).values().cloned().collect()
    }

    /// Inserts a project object built elsewhere (start-up restore).
    pub(crate) fn insert_project(&self, project: Arc<Project>) {
        write(&self.projects).insert(project.name.clone(), project);
    }

    pub fn create_project(&self, name: &str, description: &str) -> Result<Arc<Project>, ApiError> {
        validate_project_name(name).map_err(ApiError::parameter_invalid)?;
        let project = {
            let mut projects = write(&self.projects);
            if projects.contains_key(name) {
                return Err(ApiError::new(
                    400,
                    "ProjectAlreadyExist",
                    format!("Project {name} already exist"),
                ));
            }
            let project = Arc::new(Project::new(name, description, now_secs()));
            projects.insert(name.to_owned(), project.clone());
            project
        };
        self.save()?;
        Ok(project)
    }

    pub fn delete_project(&self, name: &str) -> Result<(), ApiError> {
        write(&self.projects)
            .remove(name)
            .ok_or_else(|| ApiError::project_not_exist(name))?;
        if let Some(p) = &self.persist {
            p.remove_project(name).map_err(persist_error)?;
        }
        self.save()
    }

    /// Creates a logstore with `shards` even shards.
    pub fn create_logstore(
        &self,
        project: &Project,
        name: &str,
        shards: u32,
        meta: LogstoreMeta,
    ) -> Result<Arc<Logstore>, ApiError> {
        validate_logstore_name(name).map_err(ApiError::parameter_invalid)?;
        if !(1..=MAX_SHARDS).contains(&shards) {
            return Err(ApiError::parameter_invalid(format!(
                "shardCount must be 1..={MAX_SHARDS}, got {shards}"
            )));
        }
        let logstore = {
            let mut stores = write(&project.logstores);
            if stores.contains_key(name) {
                return Err(ApiError::new(
                    400,
                    "LogStoreAlreadyExist",
                    format!("logstore {name} already exists"),
                ));
            }
            let dir = match &self.persist {
                Some(p) => Some(
                    p.create_logstore_dir(&project.name, name)
                        .map_err(persist_error)?,
                ),
                None => None,
            };
            let base = now_nanos();
            let created = now_secs();
            let mut list = Vec::with_capacity(shards as usize);
            for (id, (begin, end)) in even_ranges(shards).into_iter().enumerate() {
                let id = u32::try_from(id).expect("at most MAX_SHARDS shards");
                let shard = Shard::new(ShardSpec {
                    id,
                    base,
                    create_time: created,
                    begin_key: begin,
                    end_key: end,
                    parents: Vec::new(),
                    readonly: false,
                    groups: Vec::new(),
                    dir: dir.as_ref(),
                })
                .map_err(persist_error)?;
                list.push(Arc::new(shard));
            }
            let logstore = Arc::new(Logstore {
                name: name.to_owned(),
                meta: Mutex::new(meta),
                shards: RwLock::new(list),
                groups: Mutex::new(BTreeMap::new()),
                lb: AtomicUsize::new(0),
                dir,
            });
            stores.insert(name.to_owned(), logstore.clone());
            logstore
        };
        tracing::info!(project = %project.name, logstore = %name, shards, "logstore created");
        self.save()?;
        Ok(logstore)
    }

    pub fn delete_logstore(&self, project: &Project, name: &str) -> Result<(), ApiError> {
        write(&project.logstores)
            .remove(name)
            .ok_or_else(|| ApiError::logstore_not_exist(name))?;
        if let Some(p) = &self.persist {
            p.remove_logstore(&project.name, name)
                .map_err(persist_error)?;
        }
        self.save()
    }

    /// Writes the catalog (projects, logstores, shards, groups, checkpoints) when persisting.
    pub fn save(&self) -> Result<(), ApiError> {
        let Some(p) = &self.persist else {
            return Ok(());
        };
        p.save_catalog(self).map_err(persist_error)
    }
}

fn persist_error(e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "cannot write the data directory; the change is not persisted");
    ApiError::internal(format!("cannot write the data directory: {e}"))
}

/// `n` contiguous `[begin, end)` ranges splitting the 128-bit MD5 space evenly
/// (docs/sls-protocol.md §5.3 "ListShards, split and merge").
pub(crate) fn even_ranges(n: u32) -> Vec<(u128, u128)> {
    if n <= 1 {
        return vec![(0, u128::MAX)];
    }
    let n128 = u128::from(n);
    // 2^128 / n without overflowing: MAX / n, plus one when n divides 2^128 exactly.
    let step = u128::MAX / n128 + u128::from(u128::MAX % n128 + 1 == n128);
    (0..n128)
        .map(|i| {
            let begin = step * i;
            let end = if i + 1 == n128 {
                u128::MAX
            } else {
                step * (i + 1)
            };
            (begin, end)
        })
        .collect()
}

impl Project {
    pub fn new(name: &str, description: &str, create_time: u32) -> Self {
        Self {
            name: name.to_owned(),
            description: RwLock::new(description.to_owned()),
            create_time,
            logstores: RwLock::new(BTreeMap::new()),
        }
    }

    pub fn description(&self) -> String {
        read(&self.description).clone()
    }

    pub fn set_description(&self, description: &str) {
        *self
            .description
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = description.to_owned();
    }

    pub fn logstore(&self, name: &str) -> Result<Arc<Logstore>, ApiError> {
        read(&self.logstores)
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::logstore_not_exist(name))
    }

    pub fn logstores(&self) -> Vec<Arc<Logstore>> {
        read(&self.logstores).values().cloned().collect()
    }

    pub(crate) fn insert_logstore(&self, logstore: Arc<Logstore>) {
        write(&self.logstores).insert(logstore.name.clone(), logstore);
    }
}

/// Everything needed to build a shard (new or restored).
pub(crate) struct ShardSpec<'a> {
    pub id: u32,
    pub base: i64,
    pub create_time: u32,
    pub begin_key: u128,
    pub end_key: u128,
    pub parents: Vec<u32>,
    pub readonly: bool,
    pub groups: Vec<StoredGroup>,
    pub dir: Option<&'a PathBuf>,
}

impl Logstore {
    /// A logstore restored from the data directory.
    pub(crate) fn restored(
        name: String,
        meta: LogstoreMeta,
        shards: Vec<Arc<Shard>>,
        groups: BTreeMap<String, ConsumerGroup>,
        dir: Option<PathBuf>,
    ) -> Self {
        Self {
            name,
            meta: Mutex::new(meta),
            shards: RwLock::new(shards),
            groups: Mutex::new(groups),
            lb: AtomicUsize::new(0),
            dir,
        }
    }

    pub fn shards(&self) -> Vec<Arc<Shard>> {
        read(&self.shards).clone()
    }

    /// Looks a shard up by the id string of a path.
    pub fn shard(&self, id: &str) -> Result<Arc<Shard>, ApiError> {
        let n: u32 = id.parse().map_err(|_| ApiError::shard_not_exist(id))?;
        self.shard_by_id(n)
            .ok_or_else(|| ApiError::shard_not_exist(id))
    }

    pub fn shard_by_id(&self, id: u32) -> Option<Arc<Shard>> {
        read(&self.shards).iter().find(|s| s.id == id).cloned()
    }

    /// The shard a load-balanced PutLogs goes to: round robin over read-write shards.
    pub fn pick_lb(&self) -> Result<Arc<Shard>, ApiError> {
        let shards = read(&self.shards);
        let rw: Vec<&Arc<Shard>> = shards.iter().filter(|s| !s.is_readonly()).collect();
        if rw.is_empty() {
            return Err(ApiError::new(
                400,
                "LogStoreWithoutShard",
                format!("logstore {} has no writable shard", self.name),
            ));
        }
        let i = self.lb.fetch_add(1, Ordering::Relaxed) % rw.len();
        Ok(rw[i].clone())
    }

    /// The read-write shard whose key range contains `key` (docs/sls-protocol.md §5.4).
    pub fn pick_by_key(&self, key: u128) -> Result<Arc<Shard>, ApiError> {
        let shards = read(&self.shards);
        shards
            .iter()
            .filter(|s| !s.is_readonly())
            .find(|s| s.begin_key <= key && (key < s.end_key || s.end_key == u128::MAX))
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    400,
                    "LogStoreWithoutShard",
                    format!("no writable shard of {} covers key {key:032x}", self.name),
                )
            })
    }

    /// What consumer-group assignment needs to know about every shard.
    pub fn shard_infos(&self) -> Vec<ShardInfo> {
        read(&self.shards)
            .iter()
            .map(|s| ShardInfo {
                id: s.id,
                readonly: s.is_readonly(),
                end: s.end(),
                parents: s.parents.clone(),
            })
            .collect()
    }

    /// Creates a consumer group.
    pub fn create_group(&self, name: &str, timeout: u32, order: bool) -> Result<(), ApiError> {
        let mut groups = lock(&self.groups);
        if groups.contains_key(name) {
            return Err(ApiError::new(
                400,
                "ConsumerGroupAlreadyExist",
                format!("consumer group {name} already exist"),
            ));
        }
        if groups.len() >= MAX_GROUPS_PER_LOGSTORE {
            return Err(ApiError::new(
                400,
                "ConsumerGroupQuotaExceed",
                format!("a logstore has at most {MAX_GROUPS_PER_LOGSTORE} consumer groups"),
            ));
        }
        groups.insert(name.to_owned(), ConsumerGroup::new(name, timeout, order));
        Ok(())
    }

    /// SplitShard (docs/sls-protocol.md §5.3): the shard turns read-only and two new
    /// read-write shards cover `[begin, key)` and `[key, end)`. Returns the parent and the
    /// children.
    pub fn split(&self, id: &str, key: u128) -> Result<Vec<Arc<Shard>>, ApiError> {
        let mut shards = write(&self.shards);
        let parent = shards
            .iter()
            .find(|s| s.id.to_string() == id)
            .cloned()
            .ok_or_else(|| ApiError::shard_not_exist(id))?;
        if parent.is_readonly() {
            return Err(ApiError::parameter_invalid(format!(
                "shard {id} is read-only and cannot be split"
            )));
        }
        if key <= parent.begin_key || key >= parent.end_key {
            return Err(ApiError::parameter_invalid(format!(
                "split key {key:032x} is not inside shard {id}'s range [{:032x}, {:032x})",
                parent.begin_key, parent.end_key
            )));
        }
        self.add_children(
            &mut shards,
            std::slice::from_ref(&parent),
            &[(parent.begin_key, key), (key, parent.end_key)],
        )
    }

    /// MergeShards (docs/sls-protocol.md §5.3): `id` and the read-write shard right after it
    /// turn read-only and one new shard covers both ranges. Returns the two parents and the
    /// child.
    pub fn merge(&self, id: &str) -> Result<Vec<Arc<Shard>>, ApiError> {
        let mut shards = write(&self.shards);
        let left = shards
            .iter()
            .find(|s| s.id.to_string() == id)
            .cloned()
            .ok_or_else(|| ApiError::shard_not_exist(id))?;
        let right = shards
            .iter()
            .find(|s| !s.is_readonly() && s.begin_key == left.end_key)
            .cloned();
        let Some(right) = right.filter(|_| !left.is_readonly()) else {
            return Err(ApiError::parameter_invalid(format!(
                "shard {id} has no adjacent read-write shard to merge with"
            )));
        };
        self.add_children(
            &mut shards,
            &[left.clone(), right.clone()],
            &[(left.begin_key, right.end_key)],
        )
    }

    fn add_children(
        &self,
        shards: &mut Vec<Arc<Shard>>,
        parents: &[Arc<Shard>],
        ranges: &[(u128, u128)],
    ) -> Result<Vec<Arc<Shard>>, ApiError> {
        let first_id = shards.iter().map(|s| s.id + 1).max().unwrap_or(0);
        let mut out: Vec<Arc<Shard>> = parents.to_vec();
        let (base, created) = (now_nanos(), now_secs());
        let parent_ids: Vec<u32> = parents.iter().map(|p| p.id).collect();
        for (id, &(begin, end)) in (first_id..).zip(ranges) {
            let child = Shard::new(ShardSpec {
                id,
                base,
                create_time: created,
                begin_key: begin,
                end_key: end,
                parents: parent_ids.clone(),
                readonly: false,
                groups: Vec::new(),
                dir: self.dir.as_ref(),
            })
            .map_err(persist_error)?;
            let child = Arc::new(child);
            shards.push(child.clone());
            out.push(child);
        }
        for p in parents {
            p.readonly.store(true, Ordering::Release);
        }
        tracing::info!(logstore = %self.name, parents = ?parent_ids, "shards made read-only; children created");
        Ok(out)
    }

    /// Deletes a read-only shard.
    pub fn delete_shard(&self, id: &str) -> Result<(), ApiError> {
        let mut shards = write(&self.shards);
        let pos = shards
            .iter()
            .position(|s| s.id.to_string() == id)
            .ok_or_else(|| ApiError::shard_not_exist(id))?;
        if !shards[pos].is_readonly() {
            return Err(ApiError::parameter_invalid(format!(
                "shard {id} is read-write; only read-only shards can be deleted"
            )));
        }
        shards.remove(pos);
        Ok(())
    }
}

impl Shard {
    pub(crate) fn new(spec: ShardSpec<'_>) -> std::io::Result<Self> {
        let file = match spec.dir {
            Some(dir) => Some(Mutex::new(persist::open_shard_file(dir, spec.id)?)),
            None => None,
        };
        static NEXT_UID: AtomicU64 = AtomicU64::new(1);
        Ok(Self {
            id: spec.id,
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            base: spec.base,
            create_time: spec.create_time,
            begin_key: spec.begin_key,
            end_key: spec.end_key,
            parents: spec.parents,
            readonly: AtomicBool::new(spec.readonly),
            groups: RwLock::new(spec.groups),
            file,
        })
    }

    pub fn is_readonly(&self) -> bool {
        self.readonly.load(Ordering::Acquire)
    }

    pub fn status(&self) -> ShardStatus {
        if self.is_readonly() {
            ShardStatus::ReadOnly
        } else {
            ShardStatus::ReadWrite
        }
    }

    /// Number of LogGroups stored.
    pub fn len(&self) -> usize {
        read(&self.groups).len()
    }

    /// The end cursor: where the next LogGroup will land.
    pub fn end(&self) -> i64 {
        self.base + i64::try_from(self.len()).unwrap_or(i64::MAX / 2)
    }

    /// Index of `cursor` in this shard, or `InvalidCursor` when it is not a position of it
    /// (the emulator never expires data, so anything below the base never existed).
    pub fn index_of(&self, cursor: i64) -> Result<usize, ApiError> {
        let len = self.len();
        cursor
            .checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i <= len)
            .ok_or_else(|| {
                ApiError::invalid_cursor(format!(
                    "cursor {cursor} is outside shard {}'s range [{}, {}]",
                    self.id,
                    self.base,
                    self.base + i64::try_from(len).unwrap_or(0)
                ))
            })
    }

    pub fn cursor_at(&self, index: usize) -> i64 {
        self.base + i64::try_from(index).unwrap_or(i64::MAX / 2)
    }

    /// Index of the first LogGroup received at or after `time` (len when none).
    pub fn index_at_time(&self, time: u32) -> usize {
        read(&self.groups).partition_point(|g| g.time < time)
    }

    /// Receive time of the LogGroup at `index`; for the end position, the last LogGroup's
    /// time (or the shard's creation time when empty).
    pub fn time_at(&self, index: usize) -> u32 {
        let groups = read(&self.groups);
        groups
            .get(index)
            .or_else(|| groups.last())
            .map_or(self.create_time, |g| g.time)
    }

    /// Clones the handles of LogGroups `[from, to)`, stopping after `max_groups` or once
    /// `max_bytes` (raw) are reached, whichever comes first (at least one group).
    pub fn read_range(
        &self,
        from: usize,
        to: Option<usize>,
        max_groups: usize,
        max_bytes: usize,
    ) -> Vec<StoredGroup> {
        let groups = read(&self.groups);
        let to = to.unwrap_or(groups.len()).min(groups.len());
        let mut out = Vec::new();
        let mut bytes = 0;
        for g in groups.get(from..to).unwrap_or_default() {
            if out.len() >= max_groups || (bytes >= max_bytes && !out.is_empty()) {
                break;
            }
            bytes += g.bytes.len();
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push(g.clone());
        }
        out
    }

    /// Appends LogGroups (one PutLogs, or a generated batch), all with receive time `time`,
    /// kept non-decreasing so GetCursor by time can binary-search.
    pub fn append(&self, batch: Vec<Bytes>, time: u32) -> Result<(), ApiError> {
        let mut groups = write(&self.groups);
        let time = groups.last().map_or(time, |g| g.time.max(time));
        if let Some(file) = &self.file {
            let mut file = lock(file);
            persist::append_records(&mut file, batch.iter().map(|b| (time, b.as_ref())))
                .map_err(persist_error)?;
        }
        groups.extend(batch.into_iter().map(|bytes| StoredGroup { bytes, time }));
        Ok(())
    }

    /// All stored groups (helpers and persistence).
    pub fn all(&self) -> Vec<StoredGroup> {
        read(&self.groups).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ranges_match_the_doc() {
        let r = even_ranges(2);
        assert_eq!(
            format!("{:032x}", r[0].0),
            "00000000000000000000000000000000"
        );
        assert_eq!(
            format!("{:032x}", r[0].1),
            "80000000000000000000000000000000"
        );
        assert_eq!(
            format!("{:032x}", r[1].1),
            "ffffffffffffffffffffffffffffffff"
        );
        let r = even_ranges(4);
        assert_eq!(
            format!("{:032x}", r[1].0),
            "40000000000000000000000000000000"
        );
        for n in 1..=9 {
            let r = even_ranges(n);
            assert_eq!(r.len(), n as usize);
            assert_eq!(r[0].0, 0);
            assert_eq!(r.last().unwrap().1, u128::MAX);
            assert!(r.windows(2).all(|w| w[0].1 == w[1].0));
        }
    }

    #[test]
    fn cursors_and_ranges() {
        let shard = Shard::new(ShardSpec {
            id: 0,
            base: 1000,
            create_time: 7,
            begin_key: 0,
            end_key: u128::MAX,
            parents: vec![],
            readonly: false,
            groups: vec![],
            dir: None,
        })
        .unwrap();
        assert_eq!(shard.end(), 1000);
        shard
            .append(
                vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")],
                10,
            )
            .unwrap();
        shard.append(vec![Bytes::from_static(b"ef")], 5).unwrap();
        assert_eq!(shard.end(), 1003);
        assert_eq!(shard.time_at(2), 10, "receive times never go backwards");
        assert_eq!(shard.index_of(1003).unwrap(), 3);
        assert!(shard.index_of(1004).is_err());
        assert!(shard.index_of(999).is_err());
        assert_eq!(shard.index_at_time(11), 3);
        assert_eq!(shard.index_at_time(0), 0);
        assert_eq!(shard.read_range(0, None, 2, 100).len(), 2);
        assert_eq!(shard.read_range(0, None, 10, 3).len(), 1, "byte cap");
        assert_eq!(shard.read_range(0, None, 10, 1).len(), 1, "at least one");
        assert_eq!(shard.read_range(1, Some(2), 10, 100).len(), 1, "end bound");
    }
}
