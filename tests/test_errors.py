"""Tests of the exception hierarchy in vpcore.errors."""

import warnings

import pytest

import vpcore
from vpcore import errors
from vpcore.errors import (
    AudioConstraintError,
    AudioDecodeError,
    AudioError,
    ConvergenceWarning,
    ModelError,
    NotFittedError,
    ParameterError,
    TooLittleSpeechError,
    VpcoreError,
)

# Each exception class with every built-in callers may already catch it as.
EXPECTED_BASES = {
    ParameterError: (ValueError,),
    AudioError: (ValueError,),
    AudioDecodeError: (AudioError, ValueError),
    AudioConstraintError: (AudioError, ValueError),
    TooLittleSpeechError: (AudioConstraintError, AudioError, ValueError),
    ModelError: (RuntimeError,),
    NotFittedError: (ModelError, RuntimeError, AttributeError),
}


@pytest.mark.parametrize("cls", list(EXPECTED_BASES), ids=lambda c: c.__name__)
def test_every_error_is_a_vpcore_error_and_its_builtin(cls):
    assert issubclass(cls, VpcoreError)
    for base in EXPECTED_BASES[cls]:
        assert issubclass(cls, base), f"{cls.__name__} should be a {base.__name__}"


@pytest.mark.parametrize("cls", list(EXPECTED_BASES), ids=lambda c: c.__name__)
def test_raised_error_is_caught_by_builtin_handler_and_keeps_message(cls):
    builtin = EXPECTED_BASES[cls][-1]
    with pytest.raises(builtin) as info:
        raise cls("sample_rate=44100 must be 16000")
    assert isinstance(info.value, VpcoreError)
    assert str(info.value) == "sample_rate=44100 must be 16000"


def test_value_errors_and_runtime_errors_do_not_mix():
    # A model problem is not an input problem and vice versa: callers that map
    # ValueError to "bad request" must not catch a broken model.
    assert not issubclass(ModelError, ValueError)
    assert not issubclass(NotFittedError, ValueError)
    for cls in (ParameterError, AudioError, AudioDecodeError, AudioConstraintError,
                TooLittleSpeechError):
        assert not issubclass(cls, RuntimeError)


def test_audio_errors_are_not_parameter_errors():
    # Bad audio content and a bad argument are told apart by the server.
    for cls in (AudioError, AudioDecodeError, AudioConstraintError, TooLittleSpeechError):
        assert not issubclass(cls, ParameterError)
    assert not issubclass(AudioDecodeError, AudioConstraintError)
    assert not issubclass(AudioConstraintError, AudioDecodeError)


def test_root_is_a_plain_exception():
    assert issubclass(VpcoreError, Exception)
    assert not issubclass(VpcoreError, (ValueError, RuntimeError))


def test_convergence_warning_is_a_user_warning_not_an_error():
    assert issubclass(ConvergenceWarning, UserWarning)
    assert not issubclass(ConvergenceWarning, VpcoreError)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("did not converge", ConvergenceWarning)
    assert [w.category for w in caught] == [ConvergenceWarning]


def test_all_lists_every_public_class_and_package_reexports_them():
    public = {name for name in dir(errors)
              if isinstance(getattr(errors, name), type) and not name.startswith("_")}
    assert set(errors.__all__) == public
    for name in errors.__all__:
        if issubclass(getattr(errors, name), VpcoreError):
            assert getattr(vpcore, name) is getattr(errors, name)


def test_convergence_warning_is_sklearn_s():
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    assert issubclass(ConvergenceWarning, SklearnConvergenceWarning)
    with pytest.warns(SklearnConvergenceWarning):
        warnings.warn("did not converge", ConvergenceWarning)


def test_the_library_never_silences_warnings_wholesale():
    # Filters are the application's business: a library that resets them hides
    # ConvergenceWarning and every other warning from its users.
    import pathlib
    import re

    pattern = re.compile(r"\b(simplefilter|filterwarnings|catch_warnings|resetwarnings)\b")
    offenders = [f"{path.name}:{number}"
                 for path in sorted(pathlib.Path(vpcore.__file__).parent.glob("*.py"))
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []
