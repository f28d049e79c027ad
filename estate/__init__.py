"""The estate store: a SQL read model of every managed instance, filled from SSM by activities.

``schema`` holds the tables, ``db`` the engine and migrations, ``writes`` the only write
functions (called from activities), ``reads`` the queries the API calls (every one filtered by a
``Scope``), ``tokens`` the customer and admin read tokens (stored hashed), ``evidence`` the
identity evidence EnrollVm records (its writer, called from its activity, and its join on read).
"""
