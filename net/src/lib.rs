//! Starling's network edge, shared by the coordinator, trainers and validators.
