import inspect

import ctxbase
from ctxbase import errors


def test_all_names_exist() -> None:
    for name in ctxbase.__all__:
        assert hasattr(ctxbase, name), name


def test_every_error_is_exported_documented_and_drawn_in_the_tree() -> None:
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.CtxbaseError)
    ]
    assert len(classes) > 10
    tree = errors.__doc__ or ""
    for cls in classes:
        assert cls.__name__ in ctxbase.__all__
        assert cls.__doc__, cls.__name__
        assert cls.__name__ in tree, f"{cls.__name__} missing from the tree in errors.py"
        assert 400 <= cls.http_status < 600


def test_error_envelope_shape() -> None:
    error = errors.NotFoundError("no such memory", details={"id": "x"}, hint="check the id")
    assert error.to_dict() == {
        "error": {
            "code": "not_found",
            "message": "no such memory",
            "details": {"id": "x", "hint": "check the id"},
        }
    }
