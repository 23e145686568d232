//! Scenario fixtures for the chaos suites (being written).
