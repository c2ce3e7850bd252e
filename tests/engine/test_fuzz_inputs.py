"""Fuzzed inputs (issue 8): random and mutated input never crashes or hangs the engine.

Every entry point that takes bytes or text from outside is driven with hypothesis:
frames read from shared memory (decoders, the authenticating receiver, the
orchestrator's report router, an agent's control-command handler), message payloads
(the bus encoding, the compute agent's request checks), ``swarm.toml``/JSON
configurations, recording files, command-line arguments and custom-agent import
paths.  The rule checked everywhere: either a result, or the documented error
type with a message (``ConfigError``, ``RecordingError``, ``msgspec.DecodeError``,
``UnknownAgentType``, argparse's exit status 2), or a counted rejection -- never
another exception, and never a hang (hypothesis's deadline plus pytest's timeout).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import string
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from engine._runtime import protocol
from engine._runtime.protocol import Kind
from engine.channels import ChannelEmpty, Lane, Mailbox
from engine.communicator import Message, decode_message, encode_message
from engine.config import config_from_mapping, config_to_dict, default_config, load_config
from engine.errors import ConfigError, UnknownAgentType
from engine.ring_frame_helpers import make_frame  # noqa: F401  (placeholder, replaced below)
