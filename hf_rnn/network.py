"""Is the Hugging Face Hub reachable? Asked before anything long starts, answered within a hard deadline.

The probe goes through `huggingface_hub`'s own HTTP session, so `HF_ENDPOINT` and the proxy variables
(`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`) apply as they do to every download. It runs in a daemon thread that is
abandoned at the deadline: a host that never answers and a DNS lookup that hangs both count as offline within
`HUB_PROBE_DEADLINE_S`, where a plain request could wait for the resolver's own timeouts. An answer is
remembered for `HUB_PROBE_MEMORY_S` per endpoint and proxy setting, so one command that reads several files of a
Hub run waits for the deadline once, not once per file.
"""

import os
import threading
import time

from huggingface_hub import constants
from huggingface_hub.utils import get_session

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
HUB_PROBE_DEADLINE_S = 8.0
HUB_PROBE_MEMORY_S = 60.0
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")
# (endpoint, proxy settings) -> (monotonic time of the probe, reachable)
recent_probes: dict[tuple[str, tuple[str, ...]], tuple[float, bool]] = {}


def hub_endpoint() -> str:
    """The Hub address in use: `$HF_ENDPOINT`, else huggingface_hub's endpoint."""
    return os.environ.get("HF_ENDPOINT") or constants.ENDPOINT


def hub_is_reachable(deadline_s: float = HUB_PROBE_DEADLINE_S) -> bool:
    """True when the Hub endpoint answers a HEAD request of its front page without an error status within
    `deadline_s` seconds."""
    done, answers = threading.Event(), []

    def probe() -> None:
        try:
            response = get_session().head(hub_endpoint(), timeout=deadline_s, follow_redirects=False)
            # The Hub's front page answers 200; an error status is a gateway or proxy speaking for a Hub it cannot reach.
            answers.append(response.status_code < 400)
        except Exception:  # any failure to get an answer (refused, unresolvable, timed out) means unreachable
            pass
        finally:
            done.set()

    threading.Thread(target=probe, name="hub-probe", daemon=True).start()
    done.wait(deadline_s)
    return bool(answers) and answers[0]


def hub_is_offline() -> bool:
    """True when an offline variable is set or the Hub did not answer within the deadline (the answer of a probe
    made less than `HUB_PROBE_MEMORY_S` ago with the same endpoint and proxies stands)."""
    if any(os.environ.get(name, "").lower() in ("1", "true", "yes", "on") for name in OFFLINE_VARIABLES):
        return True
    key = (hub_endpoint(), tuple(os.environ.get(name, "") for name in PROXY_VARIABLES))
    probed = recent_probes.get(key)
    if probed is None or time.monotonic() - probed[0] > HUB_PROBE_MEMORY_S:
        probed = recent_probes[key] = (time.monotonic(), hub_is_reachable())
    return not probed[1]
