//! The logical ids of the network's resources (the `ecs:resource` tag each carries), which
//! both the reads and the plan name them by.

pub(crate) const VPC: &str = "vpc";
pub(crate) const IGW: &str = "igw";
pub(crate) const RT_PUBLIC: &str = "rt/public";
pub(crate) const SG_ALB: &str = "sg/alb";
pub(crate) const SG_TASK: &str = "sg/task";
pub(crate) const SG_ENDPOINTS: &str = "sg/endpoints";

pub(crate) fn subnet_id(tier: &str, az: &str) -> String {
    format!("subnet/{tier}/{az}")
}
pub(crate) fn nat_id(az: &str) -> String {
    format!("nat/{az}")
}
pub(crate) fn eip_id(az: &str) -> String {
    format!("eip/{az}")
}
pub(crate) fn rt_private_id(az: &str) -> String {
    format!("rt/private/{az}")
}
pub(crate) fn endpoint_id(name: &str) -> String {
    format!("endpoint/{name}")
}
