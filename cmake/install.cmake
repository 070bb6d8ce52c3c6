# What `cmake --install` (and the Debian package) puts where: the actors
# and voxctl, the systemd units and the paths they name (the docs, the
# /etc/vox examples, the NATS configurations), man pages made by help2man
# from each binary's --help, bash completion for voxctl, and the client
# library with its headers and pkg-config file. Test, bench and example
# binaries are not installed.
include(GNUInstallDirs)

set(VOX_ACTORS vox-calls vox-billing vox-leads vox-vault vox-query)
install(TARGETS ${VOX_ACTORS} voxctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT vox)

# The units name /usr/bin, /etc/vox and /usr/share/doc/vox: the package
# installs under /usr, the configuration under /etc whatever the prefix.
set(VOX_UNIT_DIR "lib/systemd/system" CACHE STRING "where the systemd units go")
set(VOX_SYSCONF_DIR "/etc/vox" CACHE STRING "where the configuration goes")
file(GLOB VOX_UNITS ${CMAKE_SOURCE_DIR}/deploy/systemd/*.service
     ${CMAKE_SOURCE_DIR}/deploy/systemd/*.target)
install(FILES ${VOX_UNITS} DESTINATION ${VOX_UNIT_DIR} COMPONENT vox)
install(FILES README.md docs/operations.md docs/security.md
              docs/architecture.md docs/testing.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT vox)
install(DIRECTORY subjects/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/subjects
        COMPONENT vox)
file(GLOB VOX_NATS_CONFS ${CMAKE_SOURCE_DIR}/deploy/nats/*.conf)
install(FILES ${VOX_NATS_CONFS} DESTINATION ${VOX_SYSCONF_DIR}/nats COMPONENT vox)
install(FILES deploy/postgres/vox.conf deploy/postgres/tables.sql
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/postgres COMPONENT vox)

# /etc/vox/<binary>.env.example: every variable the binary reads, from
# its --help, commented out with its default.
set(VOX_GEN ${CMAKE_BINARY_DIR}/generated)
foreach(b ${VOX_ACTORS})
  add_custom_command(
    OUTPUT ${VOX_GEN}/${b}.env.example
    COMMAND ${CMAKE_SOURCE_DIR}/scripts/env-example.sh $<TARGET_FILE:${b}>
            ${VOX_GEN}/${b}.env.example
    DEPENDS ${b} ${CMAKE_SOURCE_DIR}/scripts/env-example.sh
    COMMENT "env example of ${b}")
  list(APPEND VOX_ENV_EXAMPLES ${VOX_GEN}/${b}.env.example)
endforeach()
add_custom_target(vox_env_examples ALL DEPENDS ${VOX_ENV_EXAMPLES})
install(FILES ${VOX_ENV_EXAMPLES} deploy/etc/voxctl.env.example
        DESTINATION ${VOX_SYSCONF_DIR} COMPONENT vox)

# man pages: help2man, when it is installed (the package build needs it)
find_program(HELP2MAN help2man)
option(VOX_MANPAGES "Make man pages with help2man" ${HELP2MAN})
if(VOX_MANPAGES)
  if(NOT HELP2MAN)
    message(FATAL_ERROR "VOX_MANPAGES=ON needs help2man")
  endif()
  foreach(b ${VOX_ACTORS} voxctl)
    add_custom_command(
      OUTPUT ${VOX_GEN}/${b}.1
      COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section=1
              --source=vox --output=${VOX_GEN}/${b}.1 $<TARGET_FILE:${b}>
      DEPENDS ${b}
      COMMENT "man page of ${b}")
    list(APPEND VOX_MAN_PAGES ${VOX_GEN}/${b}.1)
  endforeach()
  add_custom_target(vox_man_pages ALL DEPENDS ${VOX_MAN_PAGES})
  install(FILES ${VOX_MAN_PAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
          COMPONENT vox)
endif()

install(FILES deploy/bash-completion/voxctl
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        COMPONENT vox)

# The client library (libvox-client-dev): one static archive, the public
# headers, a pkg-config file; the example bridges as sources.
install(TARGETS voxclient ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        COMPONENT dev)
install(DIRECTORY include/vox DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT dev)
configure_file(${CMAKE_SOURCE_DIR}/cmake/vox-client.pc.in
               ${VOX_GEN}/vox-client.pc @ONLY)
install(FILES ${VOX_GEN}/vox-client.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
install(FILES deploy/examples/bridge.c deploy/examples/alert_consumer.c
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/libvox-client-dev/examples
        COMPONENT dev)
