"""Every registered check, on every selected device, against the notebook under test."""
import pytest

from gradebox.runner import run_check


def test_check(check, device, implementation_for, request):
    request.node.user_properties += [("assignment", check.assignment), ("grade_id", check.grade_id),
                                     ("check", check.name), ("device", device), ("points", check.points)]
    outcome = run_check(check, implementation_for(check.assignment), device)
    if not outcome.passed:
        pytest.fail(f"{check.title}\n{outcome.message}", pytrace=False)
