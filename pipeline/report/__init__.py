"""``trailpipe report``: one self-contained HTML page of a window of the lake (charts from
plotly, top-N tables), plus alerts from a file and insights from the insights topic.

Modules: :mod:`~pipeline.report.window` (the window and its view), :mod:`~pipeline.report.lake`
(the connection over the window's partitions), :mod:`~pipeline.report.queries` (SQL over the
events), :mod:`~pipeline.report.aggregated` (the aggregator's rows, merged),
:mod:`~pipeline.report.extras` (alerts and insights), :mod:`~pipeline.report.charts`
(figures), :mod:`~pipeline.report.sections`, :mod:`~pipeline.report.render` (HTML),
:mod:`~pipeline.report.build`.
"""
