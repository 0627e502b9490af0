//! Twinkle Ticket domain: pure types and rules shared by the workloads and the
//! operator. No Kafka, Redis, kube or HTTP types live here.
#![forbid(unsafe_code)]
