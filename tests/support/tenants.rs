//! Test support for many connected tenants: adding tenants to a workspace through the API,
//! connecting them with the demo app's credentials, and a graph-sim that serves them all.
//! Runs are deduped per tenant and type, so a burst of distinct runs spans tenants.

use futures::StreamExt;
use serde_json::json;
use tenantops_core::{TenantId, UserId, WorkspaceId};
use tenantops_graph_sim::{SimClient, SimConfig, SimTenant};
use tenantops_local::seed::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, fresh_entra_id};

use crate::{ApiCall, TestStack};

/// A tenant with a provider connection, and its Entra tenant id (what graph-sim serves).
#[derive(Debug, Clone)]
pub struct ConnectedTenant {
    pub id: TenantId,
    pub entra_tenant_id: String,
}

/// How many tenants are added at once (each is a few API calls and a secret).
const AT_ONCE: usize = 8;

impl TestStack {
    /// Gives `tenant` of `ws` a provider connection with the demo app's credentials, as
    /// `user`.
    pub async fn connect(
        &self,
        ws: WorkspaceId,
        tenant: TenantId,
        user: &UserId,
    ) -> ConnectedTenant {
        let path = format!("/v1/workspaces/{ws}/tenants/{tenant}/provider-connection");
        let body = json!({ "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET });
        let connected = self
            .call(
                ApiCall {
                    method: "PUT",
                    ..ApiCall::post(path, body.to_string())
                }
                .by(user),
            )
            .await;
        assert!(connected.status < 300, "{}", connected.body);
        let entra_tenant_id = self
            .store()
            .get_tenant(ws, tenant)
            .await
            .unwrap()
            .unwrap()
            .entra_tenant_id;
        ConnectedTenant {
            id: tenant,
            entra_tenant_id,
        }
    }

    /// `n` new tenants of `ws`, each added and connected by `user`.
    pub async fn add_connected_tenants(
        &self,
        ws: WorkspaceId,
        user: &UserId,
        n: usize,
    ) -> Vec<ConnectedTenant> {
        futures::stream::iter(0..n)
            .map(|i| async move {
                let body = json!({
                    "entra_tenant_id": fresh_entra_id(),
                    "display_name": format!("Customer {i}"),
                });
                let added = self
                    .call(
                        ApiCall::post(format!("/v1/workspaces/{ws}/tenants"), body.to_string())
                            .by(user),
                    )
                    .await;
                assert_eq!(added.status, 201, "{}", added.body);
                let id: TenantId = added.body["tenant"]["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap();
                self.connect(ws, id, user).await
            })
            .buffered(AT_ONCE)
            .collect()
            .await
    }

    /// The demo tenant as a [`ConnectedTenant`] (the seed connected it).
    pub async fn demo_tenant(&self) -> ConnectedTenant {
        ConnectedTenant {
            id: self.demo.tenant_id,
            entra_tenant_id: self.entra_tenant_id().await,
        }
    }
}

/// A graph-sim configuration serving every one of `tenants` with `counts` generated objects
/// per collection path, each signed in to with the demo app's credentials.
pub fn sim_serving(tenants: &[ConnectedTenant], counts: &[(&str, usize)]) -> SimConfig {
    let client = || SimClient::new(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
    let defaults = SimConfig::default();
    SimConfig {
        tenants: tenants
            .iter()
            .map(|t| {
                SimTenant::generated(&t.entra_tenant_id, vec![client()], counts, defaults.seed)
            })
            .collect(),
        ..defaults
    }
}
