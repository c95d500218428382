//! The AWS side of the operator: one adapter per region, built on first use with the
//! operator's settings, and the start-up check that AWS answers.

use std::collections::HashMap;
use std::sync::Arc;

use lustre_cloud::aws::{AwsCloud, AwsSettings, RetryMode};
use lustre_controller::CloudProvider;
use lustre_controller::metrics::Metrics;

use crate::Run;

/// One AWS adapter per region, built on first use with the operator's settings (a class may
/// name a region other than the operator's own).
#[derive(Debug)]
pub struct RegionalClouds {
    settings: AwsSettings,
    metrics: Arc<Metrics>,
    clouds: tokio::sync::Mutex<HashMap<Option<String>, Arc<AwsCloud>>>,
}

impl RegionalClouds {
    async fn regional(&self, region: Option<&str>) -> Arc<AwsCloud> {
        let key = region
            .map(str::to_string)
            .or_else(|| self.settings.region.clone());
        let mut clouds = self.clouds.lock().await;
        if let Some(c) = clouds.get(&key) {
            return c.clone();
        }
        let settings = AwsSettings {
            region: key.clone(),
            ..self.settings.clone()
        };
        let cloud = Arc::new(AwsCloud::new(&settings, Some(self.metrics.clone())).await);
        clouds.insert(key, cloud.clone());
        cloud
    }
}

#[async_trait::async_trait]
impl CloudProvider for RegionalClouds {
    async fn cloud(&self, region: Option<&str>) -> Arc<dyn lustre_cloud::Cloud> {
        self.regional(region).await
    }
}

impl RegionalClouds {
    /// The adapters for the flags' settings; checks the operator's own region first unless
    /// told not to (`--skip-aws-preflight`).
    pub async fn start(args: &Run, metrics: Arc<Metrics>) -> anyhow::Result<Arc<Self>> {
        let settings = AwsSettings {
            region: args.aws_region.clone(),
            endpoint_url: args.aws_endpoint_url.clone(),
            max_attempts: args.aws_max_attempts,
            cluster_id: args.cluster_id.clone(),
            retry_mode: if args.aws_adaptive_retry {
                RetryMode::Adaptive
            } else {
                RetryMode::Standard
            },
            ..AwsSettings::default()
        };
        let clouds = Arc::new(Self {
            settings,
            metrics,
            clouds: Default::default(),
        });
        if args.skip_aws_preflight {
            tracing::warn!("skipping the AWS start-up check (--skip-aws-preflight)");
        } else {
            let cloud = clouds.regional(None).await;
            cloud.preflight().await.map_err(|e| anyhow::anyhow!(e))?;
            tracing::info!("AWS reachable: region, credentials and read permissions checked");
        }
        Ok(clouds)
    }
}
