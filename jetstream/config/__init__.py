"""The metric-hub config language: model, parsing, resolution, validation. No I/O here
except reading the files named by the caller in `repo.py`."""
