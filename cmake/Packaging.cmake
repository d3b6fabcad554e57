# Installing linecert as a server program, and its Debian package
# (`cpack -G DEB` in the build directory; README, "Installing on a
# server").
#
# The layout is Debian's, not a prefix's: the unit goes to
# /lib/systemd/system and the configuration to /etc/linecert whatever
# CMAKE_INSTALL_PREFIX says, because the unit names /usr/bin/linecert
# and /etc/linecert/linecert.ini. CPack installs with the prefix /usr;
# `cmake --install` by hand wants `--prefix /usr` and DESTDIR= for a
# staging tree, as any packaging does.
#
# One package, `linecert`: the service and the operator commands. The
# line simulator is a test and commissioning tool that drives a line
# from the floor server's own broker; it stays in the build tree
# (build/bin/linecert-sim) and out of the package a production server
# gets, as do the benchmarks.

include(GNUInstallDirs)
find_program(LC_GZIP gzip REQUIRED)

set(LC_DEB_DIR ${CMAKE_SOURCE_DIR}/deploy/debian)
# The package's revision: the Debian version is PROJECT_VERSION-REVISION.
set(LC_PKG_RELEASE 1)
set(LC_PKG_MAINTAINER "linecert maintainers <maintainers@linecert.invalid>"
  CACHE STRING "the Debian package's Maintainer: (whoever builds it)")

install(TARGETS linecert RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# Relocations resolved and made read-only at start (lintian's
# hardening-no-bindnow); the rest of Debian's hardening flags come with
# the compiler's defaults.
target_link_options(linecert PRIVATE -Wl,-z,relro,-z,now)
# The offline verifier, when its target exists in this tree.
if(TARGET linecert-verify)
  target_link_options(linecert-verify PRIVATE -Wl,-z,relro,-z,now)
  install(TARGETS linecert-verify RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/linecert.service
  DESTINATION /lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/linecert.ini
  DESTINATION /etc/linecert)

# Debian wants man pages gzipped with -n (no name or time stamp, so the
# package builds the same twice).
set(lc_man_gzs)
foreach(page linecert linecert-verify)
  if(EXISTS ${CMAKE_SOURCE_DIR}/docs/${page}.1)
    set(gz ${CMAKE_BINARY_DIR}/pkg/${page}.1.gz)
    add_custom_command(OUTPUT ${gz}
      COMMAND ${LC_GZIP} -9n -c ${CMAKE_SOURCE_DIR}/docs/${page}.1 > ${gz}
      DEPENDS ${CMAKE_SOURCE_DIR}/docs/${page}.1 VERBATIM)
    list(APPEND lc_man_gzs ${gz})
  endif()
endforeach()
if(lc_man_gzs)
  add_custom_target(lc_man ALL DEPENDS ${lc_man_gzs})
  install(FILES ${lc_man_gzs} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

# The operator's documentation, beside the Debian changelog (generated:
# the package's version and nothing else to say yet) and the copyright
# file once the project has a LICENSE to quote.
file(GLOB lc_docs ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${lc_docs}
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/deploy/mosquitto
  ${CMAKE_SOURCE_DIR}/deploy/nginx
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
if(EXISTS ${CMAKE_SOURCE_DIR}/LICENSE)
  install(FILES ${CMAKE_SOURCE_DIR}/LICENSE
    DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME copyright)
endif()
# Dated by the last commit, so two builds of one commit match.
execute_process(COMMAND git -C ${CMAKE_SOURCE_DIR} log -1 --format=%cD
  OUTPUT_VARIABLE lc_pkg_date OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE lc_git_rc ERROR_QUIET)
if(NOT lc_git_rc EQUAL 0 OR lc_pkg_date STREQUAL "")
  string(TIMESTAMP lc_pkg_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
endif()
set(lc_changelog ${CMAKE_BINARY_DIR}/pkg/changelog.Debian)
file(WRITE ${lc_changelog}
  "linecert (${PROJECT_VERSION}-${LC_PKG_RELEASE}) unstable; urgency=medium\n\n"
  "  * Built from the linecert source tree with CPack.\n\n"
  " -- ${LC_PKG_MAINTAINER}  "
  "${lc_pkg_date}\n")
execute_process(COMMAND ${LC_GZIP} -9nf ${lc_changelog}
  RESULT_VARIABLE lc_gz_rc)
if(NOT lc_gz_rc EQUAL 0)
  message(FATAL_ERROR "gzip ${lc_changelog} failed: ${lc_gz_rc}")
endif()
install(FILES ${lc_changelog}.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})

# lintian's findings this package cannot fix, each with its reason
# (tests/package/deb.sh runs lintian and fails on any other).
set(lc_ovr ${CMAKE_BINARY_DIR}/pkg/lintian-overrides)
file(WRITE ${lc_ovr}
  "# The source tree has no LICENSE yet; once it has, it is installed as\n"
  "# the copyright file and this override goes.\n"
  "linecert: no-copyright-file\n"
  "# The service relies on systemd's sandbox (linecert.service); there is\n"
  "# no sysvinit script to offer the same.\n"
  "linecert: package-supports-alternative-init-but-no-init.d-script *\n")
if(EXISTS ${CMAKE_SOURCE_DIR}/LICENSE)
  file(WRITE ${lc_ovr}
    "# The service relies on systemd's sandbox (linecert.service); there is\n"
    "# no sysvinit script to offer the same.\n"
    "linecert: package-supports-alternative-init-but-no-init.d-script *\n")
endif()
file(APPEND ${lc_ovr}
  "# Not uploaded to Debian: there is no ITP bug for the changelog to close.\n"
  "linecert: initial-upload-closes-no-bugs *\n")
if(NOT EXISTS ${CMAKE_SOURCE_DIR}/docs/linecert.1)
  file(APPEND ${lc_ovr}
    "# linecert(1) is installed from docs/linecert.1 once that exists.\n"
    "linecert: no-manual-page *\n")
endif()
install(FILES ${lc_ovr} DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides
  RENAME linecert)

# Maintainer scripts must be executable in the package: copied into the
# build tree with the permissions dpkg wants (conffiles 0644, scripts
# 0755), whatever the checkout's umask made of them.
set(lc_ctl ${CMAKE_BINARY_DIR}/pkg/control)
file(MAKE_DIRECTORY ${lc_ctl})
foreach(s postinst prerm postrm)
  file(COPY ${LC_DEB_DIR}/${s} DESTINATION ${lc_ctl}
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
      GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endforeach()
file(COPY ${LC_DEB_DIR}/conffiles DESTINATION ${lc_ctl}
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME linecert)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_RELEASE ${LC_PKG_RELEASE})
set(CPACK_PACKAGE_VENDOR "linecert")
set(CPACK_PACKAGE_CONTACT "${LC_PKG_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "factory provisioning broker: device certificates over Sparkplug B")
set(CPACK_PACKAGE_DESCRIPTION
  "linecert runs on a factory floor server as a Sparkplug B host\n\
application. Devices coming off a line send PKCS#10 requests in their\n\
DBIRTH; linecert checks them, gets a bootstrap and an operational\n\
certificate for each from a local or remote CA (EJBCA, AWS Private CA,\n\
Google CAS), delivers them over MQTT and records every step in a\n\
hash-chained, signed audit log.\n\
.\n\
This package installs the service under systemd (linecert.service, as\n\
the system user linecert, data in /var/lib/linecert) and the operator\n\
commands.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from the binaries (dpkg-shlibdeps); the
# maintainer scripts' own: adduser, and systemd's helpers are used only
# when present (a chroot or container may have no systemd).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "mosquitto")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "softhsm2, opensc")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${lc_ctl}/conffiles;${lc_ctl}/postinst;${lc_ctl}/prerm;${lc_ctl}/postrm")
include(CPack)
