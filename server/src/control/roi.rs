//! ROI reports and their inputs.

use super::FleetControl;
use app::control::RoiPlane;
use app::error::AppError;
use app::wire::SessionUser;

#[async_trait::async_trait]
impl RoiPlane for FleetControl {
    async fn roi(&self, window_days: u32) -> Result<app::wire::RoiReport, AppError> {
        crate::roi::report(&self.store, &self.registry, window_days).await
    }

    async fn set_roi_inputs(
        &self,
        actor: &SessionUser,
        server: &str,
        form: app::wire::RoiInputsForm,
    ) -> Result<(), AppError> {
        crate::roi::set_inputs(&self.store, &self.registry, actor, server, form).await
    }

    async fn plan_roi(&self, form: app::wire::RoiPlanForm) -> Result<app::wire::RoiPlan, AppError> {
        crate::roi::plan(form)
    }
}
