//! Project APIs (docs/sls-protocol.md §5.2), in the forms of the official SDKs: CreateProject
//! on the bare endpoint with `projectName` in the body (the Rust SDK) or on the project's
//! host (Python), UpdateProject as `PUT /` on the project's host (the Rust SDK). `GET /` is ambiguous in HTTP_PROXY mode: the
//! bare endpoint `sls.local` looks like project `sls`. ListProject always sends `offset` and
//! `size` and GetProject sends nothing, so the parameters decide; a `GET /` without a
//! project in the Host is a ListProject too.

use http::Method;
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::request::{Reply, Request};
use crate::routes::{json_body, paging, project_of};
use crate::server::State;
use crate::store::Project;

/// Region and owner reported for every project.
const REGION: &str = "emulator";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    project_name: Option<String>,
    #[serde(default)]
    description: String,
}

pub(crate) fn root(state: &State, req: &Request) -> Result<Reply, ApiError> {
    match req.method {
        Method::POST => create(state, req),
        Method::PUT => {
            let project = project_of(state, req)?;
            let body: UpdateBody = json_body(req)?;
            if let Some(d) = body.description {
                project.set_description(&d);
            }
            state.store.save()?;
            tracing::info!(project = %project.name, "project updated");
            Ok(Reply::empty())
        }
        Method::DELETE => {
            let project = project_of(state, req)?;
            state.store.delete_project(&project.name)?;
            tracing::info!(project = %project.name, "project deleted");
            Ok(Reply::empty())
        }
        Method::GET => {
            let listing = req.project.is_none()
                || req.param("offset").is_some()
                || req.param("size").is_some();
            if listing {
                list(state, req)
            } else {
                Ok(Reply::json(&describe(&*project_of(state, req)?)))
            }
        }
        _ => Err(ApiError::new(
            400,
            "InvalidMethod",
            format!("invalid request method : {} /", req.method),
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    description: Option<String>,
}

fn create(state: &State, req: &Request) -> Result<Reply, ApiError> {
    let body: CreateBody = json_body(req)?;
    let name = match (&req.project, &body.project_name) {
        // A bare endpoint given as a name (`sls.local`, the Rust SDK's CreateProject) looks
        // like project `sls`: the body names the project unless the Host's one exists.
        (Some(host), Some(named)) if host != named => {
            if state.store.project(host).is_ok() {
                return Err(ApiError::parameter_invalid(format!(
                    "projectName {named:?} does not match the project {host:?} of the Host header"
                )));
            }
            named.clone()
        }
        (Some(host), _) => host.clone(),
        (None, Some(named)) => named.clone(),
        (None, None) => {
            return Err(ApiError::parameter_invalid(
                "no project name: send Host: <project>.<endpoint> or projectName",
            ));
        }
    };
    state.store.create_project(&name, &body.description)?;
    tracing::info!(project = %name, "project created");
    Ok(Reply::empty())
}

fn describe(p: &Project) -> serde_json::Value {
    json!({
        "projectName": p.name,
        "description": p.description(),
        "status": "Normal",
        "region": REGION,
        "owner": REGION,
        "createTime": p.create_time.to_string(),
        "lastModifyTime": p.create_time.to_string(),
        "resourceGroupId": "",
        "dataRedundancyType": "LRS",
    })
}

fn list(state: &State, req: &Request) -> Result<Reply, ApiError> {
    let (offset, size) = paging(req)?;
    let pattern = req.param("projectName").unwrap_or("");
    let all: Vec<_> = state
        .store
        .projects()
        .into_iter()
        .filter(|p| p.name.contains(pattern))
        .collect();
    let page: Vec<serde_json::Value> = all
        .iter()
        .skip(offset)
        .take(size)
        .map(|p| describe(p))
        .collect();
    Ok(Reply::json(&json!({
        "count": page.len(),
        "total": all.len(),
        "projects": page,
    })))
}
