"""Unit tests, run natively against the generated bindings (see README.md)."""
import unittest

from componentize_py_types import Err

from wit_world.exports import router
from wit_world.imports import host, types

import app


def candidate(name, price, tags=(), circuit=router.CircuitState.CLOSED):
    stats = router.DeploymentStats(latency_ewma_ms=100.0, ttft_ewma_ms=0.0, error_rate=0.0,
                                   in_flight=0, circuit=circuit, requests=10,
                                   rate_limit_headroom=None)
    return router.Candidate(name=name, adapter="openai", tags=list(tags),
                            input_price_per_mtok=price, output_price_per_mtok=price,
                            weight=1, stats=stats)


def request():
    return router.RouteRequest(model="demo", estimated_prompt_tokens=10, max_tokens=None,
                               stream=False, has_tools=False,
                               caller=types.Caller(key_id=None, team=None, tags=[]),
                               request_seed=1)


class RouterTest(unittest.TestCase):
    def route(self, config, candidates):
        host.config = lambda: config  # the gateway's config, stubbed
        return app.Router().route(request(), candidates).order

    def test_tagged_first_then_cheapest_and_open_circuits_last(self):
        cs = [candidate("dear-fast", 9.0, ["fast"]), candidate("cheap", 1.0),
              candidate("cheap-fast", 2.0, ["fast"])]
        self.assertEqual(self.route("{}", cs), [1, 2, 0])
        self.assertEqual(self.route('{"prefer_tag": "fast"}', cs), [2, 0, 1])
        cs[2] = candidate("cheap-fast", 2.0, ["fast"], router.CircuitState.OPEN)
        self.assertEqual(self.route('{"prefer_tag": "fast"}', cs), [0, 1, 2])

    def test_a_typo_in_the_config_is_an_error_naming_it(self):
        with self.assertRaises(Err) as e:
            self.route('{"prefer": "x"}', [candidate("a", 1.0)])
        self.assertIn("prefer", str(e.exception.value.message))


if __name__ == "__main__":
    unittest.main()
