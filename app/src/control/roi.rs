//! ROI reports over measured usage, their inputs, and planning.

use crate::error::AppError;
use crate::wire::SessionUser;

/// ROI reports over measured usage, their inputs, and planning.
#[async_trait::async_trait]
pub trait RoiPlane: Send + Sync {
    /// The ROI report over the last `window_days` days (1..=365) of measured calls.
    async fn roi(&self, window_days: u32) -> Result<crate::wire::RoiReport, AppError>;

    /// Replaces a fleet server's ROI inputs (validated, audited). Unknown server: `NotFound`;
    /// a bad value: `Invalid`, naming the field.
    async fn set_roi_inputs(
        &self,
        actor: &SessionUser,
        server: &str,
        form: crate::wire::RoiInputsForm,
    ) -> Result<(), AppError>;

    /// The planning mode: the ROI of a proposed server from uses per person and team size.
    async fn plan_roi(
        &self,
        form: crate::wire::RoiPlanForm,
    ) -> Result<crate::wire::RoiPlan, AppError>;
}
