"""Generated from proto/ by tools/genproto.py; never edit by hand."""
