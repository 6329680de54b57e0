"""What the tests share: real servers' stand-ins, process runners, payloads. No test module
imports another test module."""
