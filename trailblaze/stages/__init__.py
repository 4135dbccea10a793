"""The grader's stages, one module each, in the order a notebook travels:

    collect   find the submissions, sanitize each as nbgrader will, say why one cannot be graded
    check     run each notebook's code in a box and every check of every grade cell against it, N at once
    store     keep each result on disk, atomically, keyed on everything that decides it
    record    `nbgrader autograde` with BoxedGrades: the stored results become the gradebook's grades
    feedback  `nbgrader generate_feedback`: one HTML page per student and assignment
    export    `nbgrader export`: reports/grades.csv, and the table the grade command prints

trailblaze.grader runs them in that order; `GradingOptions` (trailblaze.options) travels through all of them.
"""
