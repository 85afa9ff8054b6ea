//! Request dispatch: method + path (+ the `type`/`action` query parameter) select one SLS
//! API (docs/sls-protocol.md §5.1 "Summary"), implemented in one file per API family:
//! - [`project`]: CreateProject, GetProject, ListProject, DeleteProject;
//! - [`logstore`]: logstores and shards (List/Split/Merge/Delete);
//! - [`logs`]: PutLogs, GetCursor, GetCursorTime, PullLogs;
//! - [`consumer_group`]: consumer-group CRUD, heartbeat, checkpoints.
//!
//! Authentication happened before; routes only see signed requests.

pub(crate) mod consumer_group;
pub(crate) mod logs;
pub(crate) mod logstore;
pub(crate) mod project;

use std::sync::Arc;

use http::Method;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::request::{Reply, Request};
use crate::server::State;
use crate::store::{Logstore, Project};

/// Runs the API `req` addresses.
pub(crate) fn dispatch(state: &State, req: &Request) -> Result<Reply, ApiError> {
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let m = &req.method;
    match segments.as_slice() {
        [] => project::root(state, req),
        ["logstores"] => {
            let project = project_of(state, req)?;
            match *m {
                Method::GET => logstore::list(&project, req),
                Method::POST => logstore::create(state, &project, req),
                _ => Err(invalid_method(req)),
            }
        }
        ["logstores", name, rest @ ..] => {
            let project = project_of(state, req)?;
            let ls = project.logstore(name)?;
            logstore_scoped(state, req, &project, &ls, rest)
        }
        _ => Err(invalid_method(req)),
    }
}

fn logstore_scoped(
    state: &State,
    req: &Request,
    project: &Arc<Project>,
    ls: &Arc<Logstore>,
    rest: &[&str],
) -> Result<Reply, ApiError> {
    let m = &req.method;
    match rest {
        [] => match *m {
            Method::GET => logstore::get(ls),
            Method::PUT => logstore::update(state, ls, req),
            Method::DELETE => logstore::delete(state, project, &ls.name),
            // Go's PutLogs path; same as load-balanced.
            Method::POST => logs::put(state, req, ls, logs::Route::LoadBalance),
            _ => Err(invalid_method(req)),
        },
        ["shards"] if *m == Method::GET => logstore::list_shards(ls),
        ["shards", "lb"] if *m == Method::POST => {
            logs::put(state, req, ls, logs::Route::LoadBalance)
        }
        ["shards", "route"] if *m == Method::POST => logs::put(state, req, ls, logs::Route::Key),
        ["shards", id] => {
            let shard = ls.shard(id)?;
            match (m.clone(), req.param("type"), req.param("action")) {
                (Method::GET, Some("cursor"), _) => logs::get_cursor(req, &shard),
                (Method::GET, Some("cursor_time"), _) => logs::get_cursor_time(req, &shard),
                (Method::GET, Some("log" | "logs"), _) => logs::pull(state, req, &shard),
                (Method::POST, _, Some("split")) => logstore::split(state, ls, id, req),
                (Method::POST, _, Some("merge")) => logstore::merge(state, ls, id),
                (Method::POST, _, None) => {
                    logs::put(state, req, ls, logs::Route::Shard(shard.clone()))
                }
                (Method::DELETE, _, _) => logstore::delete_shard(state, ls, id),
                (Method::GET, t, _) => Err(ApiError::parameter_invalid(format!(
                    "unsupported type {:?} (expected cursor, cursor_time or log)",
                    t.unwrap_or("")
                ))),
                _ => Err(invalid_method(req)),
            }
        }
        ["consumergroups"] => match *m {
            Method::GET => consumer_group::list(ls),
            Method::POST => consumer_group::create(state, ls, req),
            _ => Err(invalid_method(req)),
        },
        ["consumergroups", group] => match (m.clone(), req.param("type")) {
            (Method::POST, Some("heartbeat")) => consumer_group::heartbeat(ls, group, req),
            (Method::POST, Some("checkpoint")) => {
                consumer_group::update_checkpoint(state, ls, group, req)
            }
            (Method::GET, _) => consumer_group::get_checkpoints(ls, group, req),
            (Method::PUT, _) => consumer_group::update(state, ls, group, req),
            (Method::DELETE, _) => consumer_group::delete(state, ls, group),
            _ => Err(invalid_method(req)),
        },
        _ => Err(invalid_method(req)),
    }
}

/// The project of a project-scoped call.
pub(crate) fn project_of(state: &State, req: &Request) -> Result<Arc<Project>, ApiError> {
    match &req.project {
        Some(p) => state.store.project(p),
        None => Err(ApiError::new(
            404,
            "ProjectNotExist",
            "no project in the Host header: send `Host: <project>.<endpoint>` \
             (the SDKs do this when the endpoint is a name or a raw IPv4 address)",
        )),
    }
}

/// What SLS answers for a method/path it does not serve.
fn invalid_method(req: &Request) -> ApiError {
    ApiError::new(
        400,
        "InvalidMethod",
        format!("invalid request method : {} {}", req.method, req.path),
    )
}

/// Parses a JSON request body.
pub(crate) fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    serde_json::from_slice(&req.body).map_err(|e| {
        ApiError::post_body_invalid(format!("request body is not valid JSON for this API: {e}"))
    })
}

/// Parses a boolean query parameter the way SDKs send them (`True`, `true`, `false`…).
pub(crate) fn bool_param(req: &Request, key: &str) -> Result<Option<bool>, ApiError> {
    match req.param(key) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(ApiError::parameter_invalid(format!(
            "{key} must be true or false, got {v:?}"
        ))),
    }
}

/// `offset`/`size` paging parameters of the List APIs.
pub(crate) fn paging(req: &Request) -> Result<(usize, usize), ApiError> {
    let num = |key: &str, default: usize| -> Result<usize, ApiError> {
        req.param(key).map_or(Ok(default), |v| {
            v.parse().map_err(|_| {
                ApiError::parameter_invalid(format!("{key} must be a number, got {v:?}"))
            })
        })
    };
    Ok((num("offset", 0)?, num("size", 500)?))
}
