"""The comparison as JUnit XML, the format CI systems display: one test case per backend pair and
node (spike agreement), one per pair for the predictions; a failure says where backends first diverge."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from .tables import divergence_text


def _case(classname: str, name: str, failure: str = "") -> str:
    head = f"<testcase classname={quoteattr(classname)} name={quoteattr(name)}"
    if not failure:
        return head + "/>"
    return head + f"><failure message={quoteattr(failure)}/></testcase>"


def render_junit(rep: dict) -> str:
    """One ``<testsuite>`` for the comparison; test cases in report order."""
    cases = []
    tol = rep["tolerances"]
    for r in rep.get("refused") or []:
        cases.append(
            _case(f"snndeploy.{r['backend']}", "runs", f"refused node '{r['node']}' ({r['type']}): {r['reason']}")
        )
    for pair in rep["pairs"]:
        cls = f"snndeploy.{pair['a']}_vs_{pair['b']}"
        for node, v in pair["nodes"].items():
            failure = ""
            if not v["passed"]:
                failure = (
                    f"node '{node}': spike agreement {v['spike_agreement']:.6f} < "
                    f"{tol['min_spike_agreement']} ({v['mismatches']} of {v['entries']} entries differ); "
                    f"first divergence: {divergence_text(v['first_divergence'])}"
                )
            cases.append(_case(cls, f"spikes.{node}", failure))
        failure = ""
        if pair["prediction_agreement"] < tol["min_prediction_agreement"]:
            failure = (
                f"prediction agreement {pair['prediction_agreement']:.6f} < {tol['min_prediction_agreement']} "
                f"({pair['samples'] - pair['prediction_matches']} of {pair['samples']} samples differ)"
            )
        cases.append(_case(cls, "predictions", failure))
    failures = sum("<failure" in c for c in cases)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f"<testsuites><testsuite name={quoteattr('snndeploy compare ' + str(rep['graph']))} "
        f'tests="{len(cases)}" failures="{failures}" errors="0">\n' + "\n".join(cases) + "\n</testsuite></testsuites>\n"
    )
