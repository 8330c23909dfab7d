"""URLs of the simulated network, mounted at ``/sim/`` by ``observatories/urls.py`` (see ``views``)."""

from django.urls import path

from . import archive, views

app_name = "simnet"

urlpatterns = [
    path("api/requestgroups/", views.requestgroups, name="requestgroups"),
    path("api/requestgroups/validate/", views.requestgroup_validate, name="requestgroup-validate"),
    path("api/requestgroups/<int:pk>/", views.requestgroup_detail, name="requestgroup-detail"),
    path("api/requestgroups/<int:pk>/cancel/", views.requestgroup_cancel, name="requestgroup-cancel"),
    path("api/requests/<int:pk>/", views.request_detail, name="request-detail"),
    path("api/requests/<int:pk>/observations/", views.request_observations, name="request-observations"),
    path("api/telescope_states/", views.telescope_states, name="telescope-states"),
    path("api/instruments/", views.instruments, name="instruments"),
    path("api/clock/", views.clock, name="clock"),
    path("api/tick/", views.tick, name="tick"),
    path("api/weather/", views.weather, name="weather"),
    path("api/downtime/", views.downtime, name="downtime"),
    path("api/downtime/clear/", views.downtime_clear, name="downtime-clear"),
    path("api/faults/", views.faults, name="faults"),
    path("api/faults/clear/", views.faults_clear, name="faults-clear"),
    # The science archive (LCO's archive API: frames by request id, FITS downloads); see ``archive``.
    path("archive/frames/", archive.frames, name="archive-frames"),
    path("archive/frames/<int:pk>/", archive.frame_detail, name="archive-frame-detail"),
    path("archive/frames/<int:pk>/download/", archive.frame_download, name="archive-frame-download"),
]
