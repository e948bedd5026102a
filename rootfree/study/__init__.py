"""The small-scale study: ``design`` (questions, searches, plan), ``schedule`` (which runs are
due, a pool that runs them, collecting records), ``report`` (tables, checks and plots from the
committed records); ``rootfree-study`` is its command line."""
