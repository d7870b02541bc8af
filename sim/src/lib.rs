//! swing-sim: appliance simulator (placeholder until issue C lands).
