"""Helpers the tests share: real Redis servers, real uvicorn processes, free ports."""
