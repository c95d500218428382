//! The file system's data repository associations: linked one by one, changed in place,
//! unlinked one by one.
//! A failure half way keeps what was done before it (it is in the outcome).

use std::sync::Arc;

use lustre_cloud::{AssociationUpdate, Cloud, DataRepositoryRequest, ErrorKind};

use super::{Acted, Outcome};

pub(super) async fn create(cloud: &Arc<dyn Cloud>, requests: &[DataRepositoryRequest]) -> Acted {
    let mut made = Vec::new();
    for r in requests {
        match cloud.create_data_repository_association(r).await {
            Ok(a) => made.push(a),
            Err(e) => return (Outcome::AssociationsCreated(made), Err(e.into())),
        }
    }
    (Outcome::AssociationsCreated(made), Ok(()))
}

pub(super) async fn update(
    cloud: &Arc<dyn Cloud>,
    id: &str,
    update: &AssociationUpdate,
) -> Result<Outcome, crate::error::Cause> {
    let a = cloud.update_data_repository_association(id, update).await?;
    Ok(Outcome::AssociationUpdated(a))
}

pub(super) async fn delete(cloud: &Arc<dyn Cloud>, ids: &[String]) -> Acted {
    let mut deleting = Vec::new();
    for id in ids {
        match cloud.delete_data_repository_association(id).await {
            Err(e) if e.kind != ErrorKind::NotFound => {
                return (Outcome::AssociationsDeleting(deleting), Err(e.into()));
            }
            Ok(()) | Err(_) => deleting.push(id.clone()),
        }
    }
    (Outcome::AssociationsDeleting(deleting), Ok(()))
}
